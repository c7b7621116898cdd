# attnflow native backend. The hot kernels are compiled four times (AVX-512, AVX2+FMA, NEON on arm64, baseline) as
# separate static libraries with their own flags; the addon picks one at load time with __builtin_cpu_supports
# (x86) or by architecture (arm64: NEON). Each isa-*.cc compiles to an empty table where its ISA cannot exist.
{
  "target_defaults": {
    "cflags": ["-O3", "-fPIC", "-fno-math-errno", "-fno-trapping-math", "-fvisibility=hidden"],
    "cflags!": ["-O2", "-Os"],
    "cflags_cc": ["-std=gnu++17"],
    "cflags_cc!": ["-std=gnu++1y", "-std=gnu++14"],
    "xcode_settings": {
      "GCC_OPTIMIZATION_LEVEL": "3",
      "CLANG_CXX_LANGUAGE_STANDARD": "gnu++17",
      "OTHER_CFLAGS": ["-fno-math-errno", "-fno-trapping-math"]
    }
  },
  "targets": [
    {
      "target_name": "attnflow_kernels_generic",
      "type": "static_library",
      "sources": ["src/isa-generic.cc"]
    },
    {
      "target_name": "attnflow_kernels_avx2",
      "type": "static_library",
      "sources": ["src/isa-avx2.cc"],
      "conditions": [
        ["target_arch=='x64' or target_arch=='ia32'", {
          "cflags": ["-mavx2", "-mfma"],
          "xcode_settings": {"OTHER_CFLAGS": ["-mavx2", "-mfma"]}
        }]
      ]
    },
    {
      "target_name": "attnflow_kernels_avx512",
      "type": "static_library",
      "sources": ["src/isa-avx512.cc"],
      "conditions": [
        ["target_arch=='x64' or target_arch=='ia32'", {
          "cflags": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mfma", "-Wno-maybe-uninitialized"],
          "xcode_settings": {"OTHER_CFLAGS": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mfma"]}
        }]
      ]
    },
    {
      "target_name": "attnflow_kernels_amx",
      "type": "static_library",
      "sources": ["src/amx-int8.cc"],
      "conditions": [
        ["target_arch=='x64'", {
          "cflags": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mfma", "-mamx-tile", "-mamx-int8"],
          "xcode_settings": {"OTHER_CFLAGS": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mfma", "-mamx-tile", "-mamx-int8"]}
        }]
      ]
    },
    {
      "target_name": "attnflow_kernels_neon",
      "type": "static_library",
      "sources": ["src/isa-neon.cc"],
      "conditions": [
        ["target_arch=='arm64'", {
          "cflags": ["-ffp-contract=fast"],
          "xcode_settings": {"OTHER_CFLAGS": ["-fno-math-errno", "-fno-trapping-math", "-ffp-contract=fast"]}
        }]
      ]
    },
    {
      "target_name": "attnflow_native",
      "sources": ["src/addon.cc", "src/napi-attention.cc", "src/napi-elementwise.cc", "src/thread-pool.cc", "src/pack-cache.cc", "src/malloc-tuning.cc", "src/amx-detect.cc"],
      "dependencies": ["attnflow_kernels_generic", "attnflow_kernels_avx2", "attnflow_kernels_avx512", "attnflow_kernels_amx", "attnflow_kernels_neon"],
      "defines": ["ATTNFLOW_VERSION=\"<!(node -p \"require('../package.json').version\")\""],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-fexceptions"],
      "ldflags": ["-pthread"],
      "xcode_settings": {"GCC_ENABLE_CPP_EXCEPTIONS": "YES"}
    }
  ]
}
