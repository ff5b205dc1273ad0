using System.Numerics.Tensors;
using Qwen3.Net.Kernels;

namespace Qwen3.Net.Model;

/// <summary>
/// The Qwen3 forward pass, top to bottom, for a block of new tokens appended to a KV cache.
/// Everything is float32; weights are widened from BF16/F16 inside the kernels.
/// Model code says what happens; the kernels in <c>Kernels/</c> say how fast.
/// </summary>
internal static class Qwen3Transformer
{
    /// <summary>
    /// Runs tokens at positions [start, start + tokens.Length) through the model, appending their keys and values to
    /// the cache, and writes the logits of the last token to <c>state.Logits</c>.
    /// </summary>
    public static void Forward(Qwen3Config c, Qwen3Weights w, ForwardState s, ReadOnlySpan<int> tokens, int start)
    {
        int n = tokens.Length;
        int hidden = c.HiddenSize;
        int headDim = c.HeadDim;
        int heads = c.NumAttentionHeads;
        int kvHeads = c.NumKeyValueHeads;
        float eps = (float)c.RmsNormEps;
        WorkerPool pool = s.Pool;

        // AsSpan, not s.X[..m]: a range over an array copies it, which allocated every token and computed in the copy.
        Span<float> x = s.X.AsSpan(0, n * hidden);                        // (n, hidden) residual stream
        Span<float> xb = s.Xb.AsSpan(0, n * hidden);                      // (n, hidden) normalized input / sublayer output
        Span<float> q = s.Q.AsSpan(0, n * heads * headDim);               // (n, heads, headDim)
        Span<float> k = s.K.AsSpan(0, n * kvHeads * headDim);             // (n, kvHeads, headDim)
        Span<float> v = s.V.AsSpan(0, n * kvHeads * headDim);             // (n, kvHeads, headDim)
        Span<float> attention = s.Attention.AsSpan(0, n * heads * headDim); // (n, heads, headDim)
        Span<float> gate = s.Gate.AsSpan(0, n * c.IntermediateSize);      // (n, intermediate)
        Span<float> up = s.Up.AsSpan(0, n * c.IntermediateSize);          // (n, intermediate)

        s.Reserve(start, n);

        // Token embedding.
        for (int t = 0; t < n; t++)
        {
            w.EmbedTokens.ReadRow(tokens[t], x.Slice(t * hidden, hidden));
        }

        s.Observer?.Invoke(0, x.Slice((n - 1) * hidden, hidden));

        for (int l = 0; l < w.Layers.Length; l++)
        {
            Qwen3LayerWeights layer = w.Layers[l];

            // Self-attention: x += o_proj(attention(rope(q_norm(q_proj(h))), rope(k_norm(k_proj(h))), v_proj(h))), h = rmsnorm(x).
            RmsNorm.Apply(pool, x, layer.InputLayernorm, eps, xb);
            MatMul.Multiply(pool, xb, n, layer.QProj, q, layer.KProj, k, layer.VProj, v); // q, k, v = Wq·h, Wk·h, Wv·h

            // Qwen3's per-head RMSNorm over head_dim, before the rotation.
            RmsNorm.Apply(pool, q, layer.QNorm, eps, q);
            RmsNorm.Apply(pool, k, layer.KNorm, eps, k);
            Rope.Apply(pool, q, n, headDim, s.Rope.Cos(start, n), s.Rope.Sin(start, n));
            Rope.Apply(pool, k, n, headDim, s.Rope.Cos(start, n), s.Rope.Sin(start, n));

            s.KvCache.Write(pool, l, start, n, k, v);
            Attention.Compute(
                pool, q, s.KvCache.KeyPages(l), s.KvCache.ValuePages(l), KvCache.PagePositions,
                heads, kvHeads, headDim, start, n, attention, s.Scores);
            MatMul.Multiply(pool, layer.OProj, attention, xb, n);                          // xb = Wo·attention
            TensorPrimitives.Add(x, xb, x);

            // SwiGLU MLP: x += down_proj(silu(gate_proj(h)) · up_proj(h)), h = rmsnorm(x).
            RmsNorm.Apply(pool, x, layer.PostAttentionLayernorm, eps, xb);
            MatMul.MultiplySwiGlu(pool, layer.GateProj, layer.UpProj, xb, gate, up, n); // gate = silu(Wg·h) ⊙ (Wu·h)
            MatMul.Multiply(pool, layer.DownProj, gate, xb, n);                           // xb = Wd·gate
            TensorPrimitives.Add(x, xb, x);

            s.Observer?.Invoke(l + 1, x.Slice((n - 1) * hidden, hidden));
        }

        // Final norm and the output head, for the last token only: that is all a generator needs.
        Span<float> last = xb[..hidden];
        RmsNorm.Apply(x.Slice((n - 1) * hidden, hidden), w.Norm, eps, last);
        s.Observer?.Invoke(w.Layers.Length + 1, last);
        MatMul.Multiply(pool, w.LmHead, last, s.Logits, 1);                                // logits = W_lm·last
    }
}
