namespace Qwen3.Net.Model;

/// <summary>
/// Keys and values of every layer for the positions evaluated so far, laid out [kvHeads, capacity, headDim] per layer
/// so that attention streams each key/value head contiguously. Grows (by doubling) with the context actually used,
/// up to <see cref="MaxCapacity"/>, so a short chat never pays for a 40k-token cache.
/// </summary>
internal sealed class KvCache
{
    private readonly int _kvHeads;
    private readonly int _headDim;
    private readonly float[][] _keys;
    private readonly float[][] _values;

    public KvCache(int layers, int kvHeads, int headDim, int maxCapacity, int initialCapacity = 256)
    {
        _kvHeads = kvHeads;
        _headDim = headDim;
        MaxCapacity = maxCapacity;
        Capacity = Math.Min(initialCapacity, maxCapacity);
        _keys = new float[layers][];
        _values = new float[layers][];
        for (int l = 0; l < layers; l++)
        {
            _keys[l] = new float[(long)kvHeads * Capacity * headDim];
            _values[l] = new float[(long)kvHeads * Capacity * headDim];
        }
    }

    /// <summary>Positions that fit without growing; the stride between key/value heads.</summary>
    public int Capacity { get; private set; }

    public int MaxCapacity { get; }

    public Span<float> Keys(int layer) => _keys[layer];

    public Span<float> Values(int layer) => _values[layer];

    /// <summary>Makes room for positions [0, length); existing entries keep their positions.</summary>
    public void EnsureCapacity(int length)
    {
        if (length <= Capacity)
        {
            return;
        }

        int capacity = Capacity;
        while (capacity < length)
        {
            capacity = (int)Math.Min((long)capacity * 2, MaxCapacity);
        }

        for (int l = 0; l < _keys.Length; l++)
        {
            _keys[l] = Regrow(_keys[l], capacity);
            _values[l] = Regrow(_values[l], capacity);
        }

        Capacity = capacity;
    }

    /// <summary>Stores [tokens, kvHeads, headDim] rows for positions start.. of one layer.</summary>
    public void Write(int layer, int start, int tokens, ReadOnlySpan<float> keys, ReadOnlySpan<float> values)
    {
        Span<float> k = _keys[layer];
        Span<float> v = _values[layer];
        for (int t = 0; t < tokens; t++)
        {
            for (int h = 0; h < _kvHeads; h++)
            {
                int source = (t * _kvHeads + h) * _headDim;
                int destination = (h * Capacity + start + t) * _headDim;
                keys.Slice(source, _headDim).CopyTo(k.Slice(destination, _headDim));
                values.Slice(source, _headDim).CopyTo(v.Slice(destination, _headDim));
            }
        }
    }

    private float[] Regrow(float[] old, int capacity)
    {
        var grown = new float[(long)_kvHeads * capacity * _headDim];
        for (int h = 0; h < _kvHeads; h++)
        {
            old.AsSpan(h * Capacity * _headDim, Capacity * _headDim).CopyTo(grown.AsSpan(h * capacity * _headDim));
        }

        return grown;
    }
}
