// Hugging Face models in attnflow (browser-safe entry; Node adds fromPretrainedDir / savePretrainedDir).
export * from "./types.js";
export { registerFamily, supportedModelTypes, familyFor, architectureFor, modelFromConfig } from "./registry.js";
export { fromPretrained, loadPretrained, memoryReader, blobReader, savePretrained, namesForSave, setTokenizerLoader, type HFFileReader, type HFFiles, type Pretrained, type PretrainedOptions, type TokenizerLoader } from "./pretrained.js";
export { BertModel, BertForSequenceClassification, BertForMaskedLM, bertFamily } from "./bert.js";
export { GPT2LMHeadModel, gpt2Family } from "./gpt2.js";
export { ViTForImageClassification, vitFamily } from "./vit.js";
export { LlamaForCausalLM, llamaFamily } from "./llama.js";
export { MistralForCausalLM, mistralFamily } from "./mistral.js";
export { marianFamily } from "./marian.js";
export { bartFamily } from "./bart.js";
export { BartLikeForConditionalGeneration } from "./bart-like.js";   // MarianMTModel and BartForConditionalGeneration
export { T5ForConditionalGeneration, t5Family } from "./t5.js";
export { generate, generateAsync, greedyGenerate, withGenerationMask, resolveGeneration, type GenerateOutput, type GenerateCallOptions, type GenerationOptions, type ResolvedGeneration } from "./generation.js";
