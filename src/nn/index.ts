export { Module, Parameter, isParameter, torchName, copyInto } from "./module.js";
export { Linear, Embedding, LayerNorm, Dropout, ReLU, GELU, Tanh, Sigmoid, Identity, Softmax, ModuleList, Sequential } from "./layers.js";
export { Conv2d, type Conv2dModuleOptions } from "./conv.js";
export { SelfAttention, MultiheadAttention, type MhaOptions, type MhaForwardOptions } from "./attention.js";
export { TransformerEncoderLayer, TransformerEncoder, TransformerDecoderLayer, TransformerDecoder, type TransformerLayerOptions } from "./transformer.js";
export { SinusoidalPositionalEncoding, LearnedPositionalEmbedding, sinusoidalTable } from "./positional.js";
export * as init from "./init.js";
