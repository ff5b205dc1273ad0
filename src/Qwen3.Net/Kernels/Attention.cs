using System.Numerics.Tensors;

namespace Qwen3.Net.Kernels;

/// <summary>
/// Causal grouped-query attention of a block of new tokens over the KV cache of one layer.
/// Query head h reads key/value head h / (heads / kvHeads); token t (at position start + t) sees positions 0..start + t.
/// </summary>
internal static class Attention
{
    // queries: [tokens, heads, headDim], already normalized and rotated.
    // keys, values: [kvHeads, stride, headDim], the layer's cache, filled up to start + tokens.
    // output: [tokens, heads, headDim]; scores: scratch of at least start + tokens floats.
    public static void Compute(
        ReadOnlySpan<float> queries, ReadOnlySpan<float> keys, ReadOnlySpan<float> values, int stride,
        int heads, int kvHeads, int headDim, int start, int tokens, Span<float> output, Span<float> scores)
    {
        float scale = 1f / MathF.Sqrt(headDim);
        int group = heads / kvHeads;
        for (int t = 0; t < tokens; t++)
        {
            int length = start + t + 1;
            for (int h = 0; h < heads; h++)
            {
                int kvHead = h / group;
                ReadOnlySpan<float> q = queries.Slice((t * heads + h) * headDim, headDim);
                ReadOnlySpan<float> k = keys.Slice(kvHead * stride * headDim);
                ReadOnlySpan<float> v = values.Slice(kvHead * stride * headDim);
                Span<float> s = scores[..length];
                for (int p = 0; p < length; p++)
                {
                    s[p] = TensorPrimitives.Dot(q, k.Slice(p * headDim, headDim)) * scale;
                }

                TensorPrimitives.SoftMax(s, s);
                Span<float> o = output.Slice((t * heads + h) * headDim, headDim);
                o.Clear();
                for (int p = 0; p < length; p++)
                {
                    TensorPrimitives.MultiplyAdd(v.Slice(p * headDim, headDim), s[p], o, o);
                }
            }
        }
    }
}
