namespace Qwen3.Net.Model;

/// <summary>
/// Rotary-embedding inverse frequencies (one per pair of head dimensions) and the factor cos/sin are multiplied by,
/// following transformers' <c>_compute_default_rope_parameters</c> and <c>_compute_yarn_parameters</c>
/// (modeling_rope_utils.py, after transformers#40320: the <c>factor</c> written in <c>rope_scaling</c> is used as is,
/// not recomputed from max_position_embeddings). Computed in double; transformers computes in float32, which the
/// forward pass's tolerance absorbs.
/// </summary>
internal static class RopeFrequencies
{
    public static double[] InverseFrequencies(Qwen3Config c)
    {
        ArgumentNullException.ThrowIfNull(c);
        int dim = c.HeadDim;
        double theta = c.RopeTheta;
        var plain = new double[dim / 2];
        for (int i = 0; i < plain.Length; i++)
            plain[i] = 1.0 / Math.Pow(theta, 2.0 * i / dim);

        if (c.RopeScaling is not RopeScaling y)
            return plain;

        // YaRN: dimensions that rotate many times within the original context keep their frequency (extrapolation),
        // those that rotate less than once are divided by the factor (interpolation), with a linear ramp between.
        double factor = y.Factor;
        int original = y.OriginalMaxPositionEmbeddings;
        double low = CorrectionDim(y.BetaFast, dim, theta, original);
        double high = CorrectionDim(y.BetaSlow, dim, theta, original);
        if (y.Truncate)
        {
            low = Math.Floor(low);
            high = Math.Ceiling(high);
        }
        low = Math.Max(low, 0);
        high = Math.Min(high, dim - 1);
        if (low == high)
            high += 0.001; // as transformers: avoids dividing by zero in the ramp

        var inv = new double[plain.Length];
        for (int i = 0; i < inv.Length; i++)
        {
            double ramp = Math.Clamp((i - low) / (high - low), 0, 1);
            double extrapolationWeight = 1 - ramp;
            double interpolated = plain[i] / factor;
            inv[i] = interpolated * (1 - extrapolationWeight) + plain[i] * extrapolationWeight;
        }
        return inv;
    }

    public static double AttentionScaling(Qwen3Config c)
    {
        ArgumentNullException.ThrowIfNull(c);
        if (c.RopeScaling is not RopeScaling y)
            return 1.0;
        if (y.AttentionFactor is double explicitFactor)
            return explicitFactor;
        // transformers' get_mscale(factor): no extra scaling when the context is not stretched.
        return y.Factor <= 1 ? 1.0 : 0.1 * Math.Log(y.Factor) + 1.0;
    }

    // The (fractional) dimension index whose wavelength fits numRotations times into the original context.
    static double CorrectionDim(double numRotations, int dim, double theta, int originalMaxPositions)
        => dim * Math.Log(originalMaxPositions / (numRotations * 2 * Math.PI)) / (2 * Math.Log(theta));
}
