// Reference batched GEMM: C[b] = alpha·op(A[b])·op(B[b]) + beta·C[b] (row-major). Loop order i-k-j keeps the
// inner loop streaming over contiguous rows of B and C when B is not transposed.
export function gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
  A: Float32Array, aOff: number, lda: number, B: Float32Array, bOff: number, ldb: number,
  beta: number, C: Float32Array, cOff: number, ldc: number,
  batch: number, strideA: number, strideB: number, strideC: number): void {
  const row = new Float64Array(N);
  for (let bt = 0; bt < batch; bt++) {
    const a0 = aOff + bt * strideA, b0 = bOff + bt * strideB, c0 = cOff + bt * strideC;
    if (!transA && transB) {
      // C[i,j] = Σ_k A[i,k]·B[j,k]: both operands stream contiguously, so use dot products
      for (let i = 0; i < M; i++) {
        const aRow = a0 + i * lda, cRow = c0 + i * ldc;
        for (let j = 0; j < N; j++) {
          const bRow = b0 + j * ldb;
          let s = 0;
          for (let k = 0; k < K; k++) s += A[aRow + k] * B[bRow + k];
          C[cRow + j] = beta === 0 ? alpha * s : alpha * s + beta * C[cRow + j];
        }
      }
      continue;
    }
    for (let i = 0; i < M; i++) {
      row.fill(0);
      for (let k = 0; k < K; k++) {
        const a = transA ? A[a0 + k * lda + i] : A[a0 + i * lda + k];
        if (a === 0) continue;
        if (transB) for (let j = 0; j < N; j++) row[j] += a * B[b0 + j * ldb + k];
        else { const bRow = b0 + k * ldb; for (let j = 0; j < N; j++) row[j] += a * B[bRow + j]; }
      }
      const cRow = c0 + i * ldc;
      if (beta === 0) for (let j = 0; j < N; j++) C[cRow + j] = alpha * row[j];
      else for (let j = 0; j < N; j++) C[cRow + j] = alpha * row[j] + beta * C[cRow + j];
    }
  }
}
