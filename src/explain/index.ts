// Explainability math on recorded attention (browser-safe, pure numeric): rollout, attention flow, gradient
// rollout and per-token importance. The worker-thread flow helpers are Node-only: src/node/flow-workers.ts.
export {
  type AttentionStack, type MatrixStack, type HeadFusion, type PrepareOptions,
  checkAttentionStack, fuseHeads, headMatrix, discardLowest, causalRenormalise, residualMix, prepareLayers, layersAsStack, matrixStack,
} from "./attention-stack.js";
export { type RolloutOptions, type PerHeadRolloutOptions, type RolloutRowOptions, attentionRollout, attentionRolloutRow, rolloutRowOfLayers, rolloutOfLayers, rolloutPerHead, headAveraged, matmulSquare } from "./rollout.js";
export {
  type FlowOptions, type FlowPrepareOptions, type FlowResult, type FlowMatrix,
  attentionFlow, attentionFlowMatrix, flowPerLayer, flowPerLayerOfLayers, flowAdjacency, flowRaw, normaliseRows, blocksToFlowMatrix,
} from "./flow.js";
export { LayeredMaxFlow, type MaxFlowStrategy } from "./maxflow.js";
export { type GradRolloutOptions, type GradRolloutResult, gradRollout, gradWeightedLayer, checkGradients } from "./grad-rollout.js";
export {
  type AttentionImportanceOptions,
  attentionImportance, rolloutImportance, flowImportance, gradRolloutImportance, inputXGradient, normaliseScores, rankData, spearman,
} from "./importance.js";
export {
  EXPLAIN_METHODS, type ExplainMethod, type Explanation, type ExplainRunOptions, type FlowRowsFn,
  runExplanation, parseMethods, resolveExplainLayer, flowRowsLocal, modelDevice,
} from "./explain-run.js";
export {
  type TargetAttention, type BlankOutResult, type InputGradResult, targetAttention, blankOut, inputGradient,
  targetAttentionAsync, blankOutAsync, inputGradientAsync,
} from "./attribution.js";
export {
  FAITHFULNESS_METHODS, FAITHFULNESS_REFERENCES, type FaithfulnessSample, type FaithfulnessSummary,
  faithfulnessOf, summariseFaithfulness, formatFaithfulnessTable,
} from "./faithfulness.js";
export {
  HEAD_IMPORTANCE_METHODS, type HeadImportanceMethod, type HeadScores, type ExampleAttention, type Query as HeadQuery,
  gradientHeadImportance, attributionHeadImportance, randomHeadImportance, rolloutHeadShift, flowHeadShift, exampleAttention, headsToPrune, parseHeadCount,
} from "./head-importance.js";
