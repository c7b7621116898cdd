// Element types. float32 carries all math; int32 holds indices/targets; bool holds masks (one byte, 0 or 1).
export type DType = "float32" | "int32" | "bool";

export type TypedArrayOf<D extends DType> = D extends "float32" ? Float32Array : D extends "int32" ? Int32Array : Uint8Array;
export type AnyTypedArray = Float32Array | Int32Array | Uint8Array;

export function arrayFor(dtype: DType, length: number): AnyTypedArray {
  switch (dtype) {
    case "float32": return new Float32Array(length);
    case "int32": return new Int32Array(length);
    case "bool": return new Uint8Array(length);
  }
}

export function dtypeOfArray(a: ArrayLike<number>): DType {
  if (a instanceof Int32Array) return "int32";
  if (a instanceof Uint8Array) return "bool";
  return "float32";
}

export function bytesPerElement(dtype: DType): number {
  return dtype === "bool" ? 1 : 4;
}
