using System.Runtime.CompilerServices;

namespace Qwen3.Net.Kernels;

/// <summary>The products a <see cref="RowSplitJob{TMatrix, TProduct}"/> shares out: a range of one matrix's rows on the calling thread.</summary>
internal unsafe interface IRowProduct<TMatrix>
    where TMatrix : struct
{
    /// <summary>Rows of <paramref name="w"/>; 0 for an absent (default) matrix.</summary>
    static abstract int RowCount(in TMatrix w);

    /// <summary>Rows [rowStart, rowEnd) of y = W·x for every token.</summary>
    void Rows(in TMatrix w, float* y, int rowStart, int rowEnd);

    /// <summary>gate = silu(gate) ⊙ up over one token's rows.</summary>
    void SwiGlu(Span<float> gate, ReadOnlySpan<float> up);
}

/// <summary>
/// Up to three matrices over the same x, their rows laid end to end in blocks of a fixed number of rows (one pool item
/// each); or, with <see cref="SwiGlu"/>, gate and up over the same rows, followed by the activation while both are in cache.
/// </summary>
internal readonly unsafe struct RowSplitJob<TMatrix, TProduct> : IRangeJob
    where TMatrix : struct
    where TProduct : struct, IRowProduct<TMatrix>
{
    private readonly TProduct _product;
    private readonly int _tokens, _blockRows, _end0, _end1;
    private readonly TMatrix _w0, _w1, _w2;
    private readonly float* _y0, _y1, _y2;

    public RowSplitJob(
        TProduct product, int tokens, int blockRows,
        in TMatrix w0, float* y0, in TMatrix w1 = default, float* y1 = null, in TMatrix w2 = default, float* y2 = null)
    {
        _product = product;
        _tokens = tokens;
        _blockRows = blockRows;
        _w0 = w0;
        _w1 = w1;
        _w2 = w2;
        _y0 = y0;
        _y1 = y1;
        _y2 = y2;
        _end0 = BlockCount(w0);
        _end1 = _end0 + BlockCount(w1);
        Blocks = _end1 + BlockCount(w2);
    }

    /// <summary>Pool items of all the matrices; a SwiGlu job runs <see cref="BlockCount"/> of the gate.</summary>
    public int Blocks { get; }

    public bool SwiGlu { get; init; }

    public int BlockCount(in TMatrix w) => (TProduct.RowCount(w) + _blockRows - 1) / _blockRows;

    public void Execute(int start, int end, int worker)
    {
        if (SwiGlu)
        {
            int rows = TProduct.RowCount(_w0);
            int rowStart = start * _blockRows;
            int rowEnd = Math.Min(end * _blockRows, rows);
            _product.Rows(_w0, _y0, rowStart, rowEnd);
            _product.Rows(_w1, _y1, rowStart, rowEnd);
            for (int t = 0; t < _tokens; t++)
            {
                long offset = (long)t * rows + rowStart;
                _product.SwiGlu(new Span<float>(_y0 + offset, rowEnd - rowStart), new ReadOnlySpan<float>(_y1 + offset, rowEnd - rowStart));
            }

            return;
        }

        Segment(_w0, _y0, 0, _end0, start, end);
        Segment(_w1, _y1, _end0, _end1, start, end);
        Segment(_w2, _y2, _end1, Blocks, start, end);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Segment(in TMatrix w, float* y, int first, int last, int start, int end)
    {
        int from = Math.Max(start, first);
        int to = Math.Min(end, last);
        if (from < to)
        {
            _product.Rows(w, y, (from - first) * _blockRows, Math.Min((to - first) * _blockRows, TProduct.RowCount(w)));
        }
    }
}
