namespace Qwen3.Net;

/// <summary>The range checks options' setters and methods share, each throwing <see cref="ArgumentOutOfRangeException"/> naming the value.</summary>
internal static class ArgumentChecks
{
    /// <summary><paramref name="value"/> if it is in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public static int InRange(int value, int min, int max, string name)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(value, min, name);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(value, max, name);
        return value;
    }

    /// <summary><paramref name="value"/> if it is null (no limit) or not negative.</summary>
    public static int? NullOrNotNegative(int? value, string name)
    {
        if (value is { } limit)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(limit, name);
        }

        return value;
    }
}
