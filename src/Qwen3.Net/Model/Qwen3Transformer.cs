using System.Numerics.Tensors;
using Qwen3.Net.Kernels;

namespace Qwen3.Net.Model;

/// <summary>
/// The Qwen3 forward pass, top to bottom, for a batch of new tokens from one or more sequences, each appended to its own
/// KV cache. Everything is float32; weights are widened from BF16/F16 inside the kernels.
/// Model code says what happens; the kernels in <c>Kernels/</c> say how fast.
/// </summary>
/// <remarks>
/// Every matrix product runs over all the batch's tokens at once, so each weight is read once per step however many
/// sequences take part (decoding is memory-bound: that read is the step's cost). Only RoPE, the cache write and
/// attention look at which sequence a token belongs to, and run once per segment.
/// </remarks>
internal static class Qwen3Transformer
{
    /// <summary>
    /// Runs the batch's tokens through the model, appending their keys and values to their caches, and writes the
    /// logits of each segment's last token to the segment's <see cref="BatchSegment.Logits"/>, where given (or its
    /// final-norm hidden state, for a <see cref="BatchSegment.HiddenOnly"/> segment). Each segment's positions must have
    /// been made writable (<see cref="KvCache.PrepareWrite"/>).
    /// </summary>
    /// <exception cref="OperationCanceledException">Every segment's caller cancelled; checked between layers.</exception>
    public static void Forward(Qwen3Config c, Qwen3Weights w, BatchState s, ForwardBatch batch)
    {
        int n = batch.TokenCount;
        int hidden = c.HiddenSize;
        int headDim = c.HeadDim;
        int heads = c.NumAttentionHeads;
        int kvHeads = c.NumKeyValueHeads;
        float eps = (float)c.RmsNormEps;
        WorkerPool pool = s.Pool;
        ReadOnlySpan<BatchSegment> segments = batch.Segments.AsSpan(0, batch.SegmentCount);

        // AsSpan, not s.X[..m]: a range over an array copies it, which allocated every token and computed in the copy.
        Span<float> x = s.X.AsSpan(0, n * hidden);                        // (n, hidden) residual stream
        Span<float> xb = s.Xb.AsSpan(0, n * hidden);                      // (n, hidden) normalized input / sublayer output
        Span<float> q = s.Q.AsSpan(0, n * heads * headDim);               // (n, heads, headDim)
        Span<float> k = s.K.AsSpan(0, n * kvHeads * headDim);             // (n, kvHeads, headDim)
        Span<float> v = s.V.AsSpan(0, n * kvHeads * headDim);             // (n, kvHeads, headDim)
        Span<float> attention = s.Attention.AsSpan(0, n * heads * headDim); // (n, heads, headDim)
        Span<float> gate = s.Gate.AsSpan(0, n * c.IntermediateSize);      // (n, intermediate)
        Span<float> up = s.Up.AsSpan(0, n * c.IntermediateSize);          // (n, intermediate)

        int longest = 0, wanted = 0;
        foreach (ref readonly BatchSegment segment in segments)
        {
            longest = Math.Max(longest, segment.Start + segment.Count);
            wanted += segment.Logits is null || segment.HiddenOnly ? 0 : 1;
        }

        s.Reserve(n, longest, Math.Max(wanted, 1), hidden);

        // A step of decoding tokens only (one per sequence, no prompt chunk) may take other kernels (MatMul.DecodeMaxTokens).
        bool decoding = n == segments.Length;

        // Token embedding.
        for (int t = 0; t < n; t++)
        {
            w.EmbedTokens.ReadRow(batch.Tokens[t], x.Slice(t * hidden, hidden));
        }

        Observe(segments, 0, x, hidden);

        for (int l = 0; l < w.Layers.Length; l++)
        {
            if (batch.AllCancelled())
            {
                throw new OperationCanceledException("Every sequence of the batch was cancelled.");
            }

            Qwen3LayerWeights layer = w.Layers[l];

            // Self-attention: x += o_proj(attention(rope(q_norm(q_proj(h))), rope(k_norm(k_proj(h))), v_proj(h))), h = rmsnorm(x).
            RmsNorm.Apply(pool, x, layer.InputLayernorm, eps, xb);
            MatMul.Multiply(pool, xb, n, layer.QProj, q, layer.KProj, k, layer.VProj, v, decoding); // q, k, v = Wq·h, Wk·h, Wv·h

            // Qwen3's per-head RMSNorm over head_dim, before the rotation.
            RmsNorm.Apply(pool, q, layer.QNorm, eps, q);
            RmsNorm.Apply(pool, k, layer.KNorm, eps, k);

            // Each sequence at its own positions, over its own cache.
            foreach (ref readonly BatchSegment segment in segments)
            {
                int qRows = segment.Offset * heads * headDim, kvRows = segment.Offset * kvHeads * headDim;
                Span<float> sq = q.Slice(qRows, segment.Count * heads * headDim);
                Span<float> sk = k.Slice(kvRows, segment.Count * kvHeads * headDim);
                Span<float> sv = v.Slice(kvRows, segment.Count * kvHeads * headDim);
                Rope.Apply(pool, sq, segment.Count, headDim, s.Rope.Cos(segment.Start, segment.Count), s.Rope.Sin(segment.Start, segment.Count));
                Rope.Apply(pool, sk, segment.Count, headDim, s.Rope.Cos(segment.Start, segment.Count), s.Rope.Sin(segment.Start, segment.Count));
                segment.Cache.Write(pool, l, segment.Start, segment.Count, sk, sv);
                Attention.Compute(
                    pool, sq, segment.Cache.KeyPages(l), segment.Cache.ValuePages(l), KvCache.PagePositions,
                    heads, kvHeads, headDim, segment.Start, segment.Count, attention.Slice(qRows, sq.Length), s.Scores);
            }

            MatMul.Multiply(pool, layer.OProj, attention, xb, n, decoding);                    // xb = Wo·attention
            TensorPrimitives.Add(x, xb, x);

            // SwiGLU MLP: x += down_proj(silu(gate_proj(h)) · up_proj(h)), h = rmsnorm(x).
            RmsNorm.Apply(pool, x, layer.PostAttentionLayernorm, eps, xb);
            MatMul.MultiplySwiGlu(pool, layer.GateProj, layer.UpProj, xb, gate, up, n, decoding); // gate = silu(Wg·h) ⊙ (Wu·h)
            MatMul.Multiply(pool, layer.DownProj, gate, xb, n, decoding);                     // xb = Wd·gate
            TensorPrimitives.Add(x, xb, x);

            Observe(segments, l + 1, x, hidden);
        }

        // Final norm and the output head, for each sequence's last token only: that is all a generator needs. An
        // embedding needs only the normalized state, which skips the head, most of a short input's cost.
        Span<float> last = s.LastHidden.AsSpan(0, wanted * hidden);       // (wanted, hidden)
        int row = 0;
        foreach (ref readonly BatchSegment segment in segments)
        {
            if (segment.Logits is not null)
            {
                Span<float> normalized = segment.HiddenOnly ? segment.Logits.AsSpan(0, hidden) : last.Slice(row++ * hidden, hidden);
                RmsNorm.Apply(x.Slice((segment.Offset + segment.Count - 1) * hidden, hidden), w.Norm, eps, normalized);
                segment.Observer?.Invoke(w.Layers.Length + 1, normalized);
            }
        }

        if (wanted == 0)
        {
            return;
        }

        Span<float> logits = s.Logits.AsSpan(0, wanted * c.VocabSize);   // (wanted, vocab)
        MatMul.Multiply(pool, w.LmHead!.Value, last, logits, wanted, decoding); // logits = W_lm·last (contexts check the head exists)
        row = 0;
        foreach (ref readonly BatchSegment segment in segments)
        {
            if (segment.Logits is not null && !segment.HiddenOnly)
            {
                logits.Slice(row++ * c.VocabSize, c.VocabSize).CopyTo(segment.Logits);
            }
        }
    }

    /// <summary>Shows each observed sequence the residual stream of its last token (tests compare it with the reference).</summary>
    private static void Observe(ReadOnlySpan<BatchSegment> segments, int stage, Span<float> x, int hidden)
    {
        foreach (ref readonly BatchSegment segment in segments)
        {
            segment.Observer?.Invoke(stage, x.Slice((segment.Offset + segment.Count - 1) * hidden, hidden));
        }
    }
}
