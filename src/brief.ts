// The product brief's example sentence, used wherever attnflow shows "the brief's sentence": `attnflow demo` (the
// trained classifier), `attnflow demo --untrained` (the bare SelfAttention) and the in-browser explainer's default
// text. It is the input of the brief's self-attention "Application Case" (embedded as 'I', 'like', 'to', 'read',
// 'technical', 'blogs'). Browser-safe: one definition for Node and the page.
export const BRIEF_SENTENCE = "I like to read technical blogs.";
