using System.Globalization;

namespace Qwen3.Net.Benchmarks;

/// <summary>
/// <c>--name value</c> options and bare <c>--flag</c>s after the command word. Unknown or unused options are an
/// error, so a mistyped option never silently runs a benchmark with defaults.
/// </summary>
public sealed class CommandArguments
{
    private readonly Dictionary<string, string?> _options = new(StringComparer.Ordinal);
    private readonly HashSet<string> _consumed = new(StringComparer.Ordinal);

    public CommandArguments(IEnumerable<string> args)
    {
        var list = args.ToList();
        for (int i = 0; i < list.Count; i++)
        {
            if (!list[i].StartsWith("--", StringComparison.Ordinal))
            {
                throw new ArgumentException($"Unexpected argument '{list[i]}'.");
            }
            string name = list[i][2..];
            string? value = i + 1 < list.Count && !list[i + 1].StartsWith("--", StringComparison.Ordinal) ? list[++i] : null;
            _options[name] = value;
        }
    }

    public string? GetString(string name)
    {
        _consumed.Add(name);
        if (_options.TryGetValue(name, out string? value))
        {
            return value ?? throw new ArgumentException($"--{name} needs a value.");
        }
        return null;
    }

    public string GetRequiredString(string name) =>
        GetString(name) ?? throw new ArgumentException($"--{name} is required.");

    public int GetInt(string name, int fallback) =>
        GetString(name) is { } text ? Parse<int>(name, text) : fallback;

    public ulong GetUInt64(string name, ulong fallback) =>
        GetString(name) is { } text ? Parse<ulong>(name, text) : fallback;

    public int[] GetIntList(string name, int[] fallback) =>
        GetString(name) is { } text
            ? text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s => Parse<int>(name, s)).ToArray()
            : fallback;

    public bool GetFlag(string name)
    {
        _consumed.Add(name);
        if (_options.TryGetValue(name, out string? value))
        {
            return value is null ? true : throw new ArgumentException($"--{name} takes no value.");
        }
        return false;
    }

    // An ArgumentException, not a FormatException, so a mistyped number is reported like any other bad option.
    private static T Parse<T>(string name, string text)
        where T : IParsable<T> =>
        T.TryParse(text, CultureInfo.InvariantCulture, out var value) ? value : throw new ArgumentException($"--{name} takes whole numbers, not '{text}'.");

    /// <summary>Call after reading every option the command knows.</summary>
    public void RejectUnknown()
    {
        var unknown = _options.Keys.Where(k => !_consumed.Contains(k)).ToList();
        if (unknown.Count > 0)
        {
            throw new ArgumentException($"Unknown option(s): {string.Join(", ", unknown.Select(u => "--" + u))}.");
        }
    }
}
