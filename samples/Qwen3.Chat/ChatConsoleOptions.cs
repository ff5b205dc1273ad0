using System.Globalization;

namespace Qwen3.Chat;

/// <summary>Command-line settings of the console chat.</summary>
public sealed record ChatConsoleOptions
{
    /// <summary>How to call the program.</summary>
    public const string Usage =
        "usage: dotnet run --project samples/Qwen3.Chat -- [model-folder-or-id] [--threads N] [--max-tokens N] [--temperature T] [--seed N] [--no-think] [--prompt TEXT] [--refresh-page-cache]";

    /// <summary>The Hugging Face model folder or model id (downloaded into the hub cache); null to use the bundled tiny test model.</summary>
    public string? ModelFolder { get; init; }

    /// <summary>Threads for the forward pass; null for one per core.</summary>
    public int? Threads { get; init; }

    /// <summary>Most tokens per answer; null for the library default.</summary>
    public int? MaxTokens { get; init; }

    /// <summary>Sampling temperature; null for the model card's value for the thinking mode.</summary>
    public float? Temperature { get; init; }

    /// <summary>Seed for reproducible sampling; null for a fresh one per answer.</summary>
    public ulong? Seed { get; init; }

    /// <summary>Start with thinking disabled.</summary>
    public bool NoThink { get; init; }

    /// <summary>Text to complete greedily, without the chat template, after which the program exits; null to chat.</summary>
    public string? Prompt { get; init; }

    /// <summary>Load with <see cref="Qwen3.Net.Qwen3ModelOptions.RefreshPageCache"/> (Linux: the model files read back into large folios).</summary>
    public bool RefreshPageCache { get; init; }

    /// <summary>Dim the reasoning with ANSI escapes; off when output is redirected.</summary>
    public bool UseColor { get; init; }

    /// <summary>Reads the command line.</summary>
    /// <param name="args">The arguments after <c>--</c>.</param>
    /// <exception cref="ArgumentException">An option is unknown, lacks its value or has an invalid one.</exception>
    public static ChatConsoleOptions Parse(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var options = new ChatConsoleOptions();
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            string Value() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{arg} needs a value.");
            options = arg switch
            {
                "--threads" => options with { Threads = Positive(arg, Value()) },
                "--max-tokens" => options with { MaxTokens = Positive(arg, Value()) },
                "--temperature" => options with { Temperature = NonNegative(Value()) },
                "--seed" => options with { Seed = ulong.TryParse(Value(), NumberStyles.None, CultureInfo.InvariantCulture, out var s) ? s : throw new ArgumentException("--seed needs a non-negative integer.") },
                "--no-think" => options with { NoThink = true },
                "--prompt" => options with { Prompt = Value() },
                "--refresh-page-cache" => options with { RefreshPageCache = true },
                _ when arg.StartsWith("--", StringComparison.Ordinal) => throw new ArgumentException($"Unknown option {arg}."),
                _ when options.ModelFolder is null => options with { ModelFolder = arg },
                _ => throw new ArgumentException($"Only one model folder may be given; '{arg}' is extra."),
            };
        }

        return options;
    }

    private static int Positive(string name, string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0 ? n : throw new ArgumentException($"{name} needs a positive integer, not '{text}'.");

    private static float NonNegative(string text) =>
        float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out float t) && float.IsFinite(t) && t >= 0
            ? t
            : throw new ArgumentException($"--temperature needs a number >= 0, not '{text}'.");
}
