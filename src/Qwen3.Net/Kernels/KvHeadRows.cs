using System.Runtime.CompilerServices;

namespace Qwen3.Net.Kernels;

/// <summary>
/// One kv head's rows in a paged KV cache, the layout the cache writes and attention reads: each page holds
/// [kvHeads, pagePositions, headDim] floats, and position p is row p mod pagePositions of the head's part of page
/// p / pagePositions, so rows are consecutive within a page.
/// </summary>
internal readonly unsafe struct KvHeadRows(nint* pages, int pagePositions, int kvHead, int headDim)
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float* Row(int p) => (float*)pages[p / pagePositions] + ((long)kvHead * pagePositions + p % pagePositions) * headDim;
}
