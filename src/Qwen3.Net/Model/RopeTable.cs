namespace Qwen3.Net.Model;

/// <summary>
/// cos and sin of position · inv_freq[i] (times the YaRN attention scaling) for every position of a context,
/// computed in double and rounded once, grown alongside the KV cache.
/// </summary>
internal sealed class RopeTable
{
    private readonly double[] _inverseFrequencies;
    private readonly double _scaling;
    private float[] _cos = [];
    private float[] _sin = [];

    public RopeTable(Qwen3Config config)
    {
        _inverseFrequencies = RopeFrequencies.InverseFrequencies(config);
        _scaling = RopeFrequencies.AttentionScaling(config);
    }

    public int Half => _inverseFrequencies.Length;

    public int Length { get; private set; }

    /// <summary>cos of positions [start, start + count), Half values each.</summary>
    public ReadOnlySpan<float> Cos(int start, int count) => _cos.AsSpan(start * Half, count * Half);

    /// <summary>sin of positions [start, start + count), Half values each.</summary>
    public ReadOnlySpan<float> Sin(int start, int count) => _sin.AsSpan(start * Half, count * Half);

    public void EnsureLength(int length)
    {
        if (length <= Length)
        {
            return;
        }

        if (_cos.Length < length * Half)
        {
            // Doubling, so decoding one token at a time does not reallocate the table at every position.
            int positions = Math.Max(length, Math.Min(2 * Length, int.MaxValue / Half / 2));
            Array.Resize(ref _cos, positions * Half);
            Array.Resize(ref _sin, positions * Half);
        }

        for (int p = Length; p < length; p++)
        {
            for (int i = 0; i < Half; i++)
            {
                // In double: at long positions a float32 angle is off by ~1e-4 rad, which the goldens would notice.
                double angle = p * _inverseFrequencies[i];
                _cos[p * Half + i] = (float)(Math.Cos(angle) * _scaling);
                _sin[p * Half + i] = (float)(Math.Sin(angle) * _scaling);
            }
        }

        Length = length;
    }
}
