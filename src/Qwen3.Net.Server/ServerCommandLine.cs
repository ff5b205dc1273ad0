using System.Globalization;
using System.Net;

namespace Qwen3.Net.Server;

/// <summary>The server executable's command line.</summary>
internal sealed record ServerCommandLine
{
    public const string Usage =
        "usage: Qwen3.Net.Server [--model <folder>] [--port 8000] [--host 127.0.0.1] [--api-key KEY] [--threads N]\n" +
        "                        [--context N] [--max-sequences N] [--max-concurrent-requests N] [--served-model-name NAME]\n" +
        "                        [--embedding-model <folder>] [--reranker-model <folder>] [--refresh-page-cache]\n" +
        "                        [--packed-weights] [--no-warmup]";

    public string? Model { get; init; }

    public int Port { get; init; } = 8000;

    public string Host { get; init; } = "127.0.0.1";

    public string? ApiKey { get; init; }

    public int? Threads { get; init; }

    public int? Context { get; init; }

    public int? MaxSequences { get; init; }

    public int? MaxConcurrentRequests { get; init; }

    public string? ServedModelName { get; init; }

    /// <summary>A Qwen3-Embedding folder served at <c>/v1/embeddings</c>, beside the chat model.</summary>
    public string? EmbeddingModel { get; init; }

    /// <summary>A Qwen3-Reranker folder served at <c>/v1/rerank</c>, beside the chat model.</summary>
    public string? RerankerModel { get; init; }

    /// <summary>Loads the models with <see cref="Qwen3ModelOptions.RefreshPageCache"/>.</summary>
    public bool RefreshPageCache { get; init; }

    /// <summary>Loads the models with <see cref="Qwen3ModelOptions.PackedWeights"/>.</summary>
    public bool PackedWeights { get; init; }

    /// <summary>Whether each model runs its first forward passes before the server listens (<see cref="ServerHost"/>).</summary>
    public bool Warmup { get; init; } = true;

    /// <summary>Whether <see cref="Host"/> is reachable only from this machine.</summary>
    public bool IsLoopback => Host == "localhost" || (IPAddress.TryParse(Host, out var address) && IPAddress.IsLoopback(address));

    /// <exception cref="ArgumentException">An unknown option, a missing value or a value that is not a number in range.</exception>
    public static ServerCommandLine Parse(string[] args)
    {
        var result = new ServerCommandLine();
        for (int i = 0; i < args.Length; i++)
        {
            string name = args[i];
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{name} needs a value.");
            int Number(int min, int max)
            {
                string text = Value();
                return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= min && n <= max
                    ? n
                    : throw new ArgumentException($"{name} must be an integer from {min} to {max}, not '{text}'.");
            }

            result = name switch
            {
                "--model" => result with { Model = Value() },
                "--port" => result with { Port = Number(0, 65535) },
                "--host" => result with { Host = Value() },
                "--api-key" => result with { ApiKey = Value() },
                "--threads" => result with { Threads = Number(1, 1024) },
                "--context" => result with { Context = Number(2, int.MaxValue) },
                "--max-sequences" => result with { MaxSequences = Number(1, 1024) },
                "--max-concurrent-requests" => result with { MaxConcurrentRequests = Number(1, 65536) },
                "--served-model-name" => result with { ServedModelName = Value() },
                "--embedding-model" => result with { EmbeddingModel = Value() },
                "--reranker-model" => result with { RerankerModel = Value() },
                "--refresh-page-cache" => result with { RefreshPageCache = true },
                "--packed-weights" => result with { PackedWeights = true },
                "--no-warmup" => result with { Warmup = false },
                _ => throw new ArgumentException($"Unknown option '{name}'."),
            };
        }

        return result;
    }
}
