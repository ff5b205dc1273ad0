using System.Globalization;
using System.Text.Json;
using Qwen3.Net.Benchmarks.Checkpoints;
using Qwen3.Net.Benchmarks.E2e;
using Qwen3.Net.Benchmarks.Engines;
using Qwen3.Net.Benchmarks.Gguf;
using Qwen3.Net.Benchmarks.Kernels;
using Qwen3.Net.Benchmarks.Probes;
using Qwen3.Net.Loading.Gguf;

namespace Qwen3.Net.Benchmarks;

public static class Program
{
    private const string Usage = """
        Qwen3.Net benchmarks

          generate     [--size 0.6b|1.7b|4b] [--out DIR] [--seed N] [--no-gguf] [--hash]
                       Synthetic-weight Qwen3 in Hugging Face layout (+ model-bf16.gguf, model-q8_0.gguf, model-q4_k_m.gguf, model-q5_0.gguf, model-q3_k_m.gguf, model-q2_k.gguf).
          convert-gguf --model DIR [--out FILE]
                       An existing BF16 Hugging Face Qwen3 folder as model-bf16.gguf.
          check-gguf   [--gguf FILE]
                       Runs the tiny-qwen3 fixture through our GGUF writer and llama.cpp and compares the logits
                       with the fixture's float64 golden values (default: converts the fixture first).
          e2e          --model DIR [--threads 1,2] [--prompt 128,512] [--decode 128] [--rounds 2] [--engines a,b]
                       [--refresh-page-cache]
                       Side-by-side end-to-end figures, each engine run in its own child process, interleaved.
                       Also measures how fast the mapped model files themselves read; --refresh-page-cache first
                       evicts them from the page cache and reads them back (Linux), so both engines read fresh pages.
          e2e-one      --engine NAME --model DIR [--threads N] [--prompt 128,512] [--decode 128]
                       One engine's run (what e2e starts per engine); prints one JSON result line.
          concurrent   --model DIR|FILE.gguf [--threads 2] [--streams 1,2,4,8] [--prompt 128] [--decode 128] [--rounds 2]
                       [--interference 2000] [--llama-bin DIR] [--refresh-page-cache] [--packed-weights]
                       Many conversations at once: N streams with prompts of their own prefilled together, then
                       decoded together (aggregate PP/TG t/s, TTFT and inter-token p50/p99, peak RSS), each N in its
                       own child process, interleaved with native llama.cpp's llama-batched-bench on the model's GGUF
                       (--llama-bin: the folder ../shared/peers/llama.cpp/build.sh prints). With N=1, also the p99
                       step time while a prompt of --interference tokens arrives, against the median step alone.
                       A .gguf model file (e.g. a quantized one) runs both engines on that file. --refresh-page-cache
                       drops both engines' files from the page cache and reads them back before each stream count
                       (Linux), so both read pages of the same kind. Each Qwen3.Net run is measured after
                       a rehearsal of the same run on other prompts and until the JIT has gone quiet.
                       --packed-weights loads with Qwen3ModelOptions.PackedWeights.
          concurrent-one --model DIR --streams N [--chunk N] [...]
                       One stream count's run (what concurrent starts); prints one JSON result line.
                       --interference N (any stream count): the streams' pooled p99 step while an N-token prompt
                       arrives, against their median step without it.
                       --chunk sets InterleavedPrefillTokens (the library default otherwise); --refresh-page-cache
                       loads with Qwen3ModelOptions.RefreshPageCache.
          chat-prefill --model DIR [--threads 2] [--words 1000] [--rounds 4]
                       A long chat message through ChatSession against as many tokens through one Evaluate, alternated.
          embeddings   --model DIR [--threads 2] [--texts 256] [--min-tokens 16] [--max-tokens 512] [--rounds 2]
                       [--llama-bin DIR] [--seed 1]
                       Embedding throughput (texts/s, tokens/s) of Qwen3Embedder on random-length token inputs,
                       interleaved with native llama-server --embeddings --pooling last on the model's GGUF (same
                       tokens, same threads), and the smallest cosine similarity between the two engines' vectors.
          soak         [--model DIR] [--conversations 16] [--minutes 10] [--threads 2] [--seed 1]
                       Many conversations on one model for a bounded time (random prompts, thinking switches, tool
                       results, cancellations); every finished turn is replayed alone and must match; RSS and thread
                       growth after warm-up are reported. The tiny fixture model by default.
          server-soak  [--clients 8] [--minutes 10] [--threads 2] [--seed 1]
                       The HTTP server under mixed traffic on loopback, in child processes (tiny random model and the
                       scripted model): streamed and whole requests, tool calls and round trips, streams dropped
                       mid-way, malformed and oversize bodies. Every response is checked; outcomes are counted by kind;
                       server RSS and threads are sampled; /health must show nothing running at the end.
          server-load  --model DIR [--gguf FILE] [--llama-bin DIR] [--clients 1,4,8] [--requests 4] [--prompt-words 115]
                       [--decode 128] [--rounds 2] [--threads 2] [--packed-weights]
                       OpenAI streaming chat load on our server and native llama-server (same weights, loopback,
                       alternated): requests/s, aggregate tokens/s, TTFT and inter-token p50/p99; at 1 client also the
                       server's decode speed against the in-process generator. --packed-weights starts our server
                       (and the in-process run) with --packed-weights.
          grammar      [--walks 20] [--compile-runs 21] [--seed 1] [--schemas a,b] [--model DIR] [--threads 1] [--tokens 128]
                       [--rounds 5] [--no-decode]
                       JSON-schema constrained decoding on the real Qwen3 vocabulary (tiny-qwen3 fixture tokenizer):
                       the one-time vocabulary tables, compile time per schema (median), token-mask p50/p90/p99 along
                       random walks with cold caches (a fresh grammar per walk) and warm, then constrained-decode.
                       --schemas keeps only the named schemas (tool-call, tool-args, person, formats, nested-30,
                       long-strings, any-object).
          constrained-decode [--model DIR] [--threads 1] [--tokens 128] [--rounds 5]
                       Decode time per token with and without a JSON-schema constraint, alternating rounds (the tiny
                       fixture model by default): the end-to-end cost of the token mask.
          probe        [--threads 1,2]
                       Only the machine ceilings: memory read bandwidth and FP32 FMA peak.
          decode-kernel [--threads 2] [--tokens 1,2,3,4] [--columns 2048,6144] [--rounds 12] [--weights-kib N]
                       [--decoding]
                       The BF16 matrix-vector kernel alone on a pool, 1 GiB of weights per column count, against a
                       plain sum of the same bytes, alternated each round: read GB/s per token count (best / median).
                       --weights-kib multiplies a smaller matrix (e.g. 1024: in L2) as often as 1 GiB takes, so the
                       kernel's own rate shows apart from memory; --decoding as model-kernel's.
          model-kernel --model DIR|FILE.gguf [--threads 2] [--tokens 1,4] [--rounds 8] [--refresh-page-cache]
                       [--type Q4_K] [--matrices N] [--rows N] [--each-round] [--decoding]
                       The matrix-vector kernels alone on a model file's layer matrices in their stored format
                       (BF16 safetensors or a GGUF's block formats), mapped as the engine maps them, against a
                       plain sum of the same mapped bytes, alternated each round: read GB/s per token count.
                       --type keeps the matrices of one tensor type, --matrices the first N of them, --rows the
                       first N rows of each (small enough, they stay in cache); --each-round prints every round;
                       --decoding multiplies the tokens as a decode step's (one per sequence), not a prompt's.
          resident     --model DIR|FILE.gguf [--threads 2] [--prompt 128] [--decode 64]
                       Resident memory (Linux) after the load, a prompt and greedy tokens in one context: the mapped
                       files, anonymous memory (KV cache, scratch, managed heap, runtime) and the managed heap.
          kernels      [BenchmarkDotNet arguments, e.g. --filter * --job short]
                       BenchmarkDotNet benchmarks of each kernel at the real Qwen3-1.7B shapes, scalar/portable baseline.
        """;

    public static int Main(string[] args)
    {
        if (args.Length == 0)
        {
            Console.WriteLine(Usage);
            return 2;
        }
        if (args[0] == "kernels")
        {
            KernelBenchmarks.Run(args[1..]);
            return 0;
        }

        if (args[0] is "--help" or "-h" or "help")
        {
            Console.WriteLine(Usage);
            return 0;
        }

        try
        {
            if (args[0] != "server-host" && args.Skip(1).Contains("--help"))
            {
                Console.WriteLine(CommandUsage(args[0]));
                return 0;
            }

            var options = new CommandArguments(args.Skip(1));
            return args[0] switch
            {
                "generate" => Generate(options),
                "convert-gguf" => ConvertGguf(options),
                "check-gguf" => CheckGguf(options),
                "e2e" => EndToEnd(options),
                "e2e-one" => EndToEndOne(options),
                "concurrent" => Concurrent(options),
                "concurrent-one" => ConcurrentOne(options),
                "soak" => Soak(options),
                "embeddings" => Embeddings(options),
                "server-soak" => ServerSoak(options),
                "server-load" => ServerLoad(options),
                "server-host" => ServerHostCommand(args[1..]),
                "chat-prefill" => ChatPrefill(options),
                "probe" => Probe(options),
                "decode-kernel" => DecodeKernel(options),
                "model-kernel" => ModelKernel(options),
                "resident" => Resident(options),
                "grammar" => Grammar(options),
                "constrained-decode" => ConstrainedDecode(options),
                _ => throw new ArgumentException($"Unknown command '{args[0]}'.\n{Usage}"),
            };
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine(e.Message);
            return 2;
        }
    }

    /// <summary>The lines of <see cref="Usage"/> that describe <paramref name="command"/>: its synopsis and the indented text below it.</summary>
    private static string CommandUsage(string command)
    {
        string[] lines = Usage.Split('\n');
        int first = Array.FindIndex(lines, l => l.StartsWith($"  {command} ", StringComparison.Ordinal));
        if (first < 0)
        {
            throw new ArgumentException($"Unknown command '{command}'.\n{Usage}");
        }

        // A command's block ends where the next command's synopsis starts, at the two-space indent.
        int end = first + 1;
        while (end < lines.Length && lines[end].StartsWith("   ", StringComparison.Ordinal))
        {
            end++;
        }

        return string.Join('\n', lines[first..end]);
    }

    private static int Concurrent(CommandArguments options)
    {
        string model = options.GetRequiredString("model");
        int threads = options.GetInt("threads", 2);
        int[] streams = options.GetIntList("streams", [1, 2, 4, 8]);
        int prompt = options.GetInt("prompt", 128);
        int decode = options.GetInt("decode", 128);
        int rounds = options.GetInt("rounds", 2);
        int interference = options.GetInt("interference", 2000);
        string? llamaBin = options.GetString("llama-bin");
        bool refresh = options.GetFlag("refresh-page-cache");
        bool packed = options.GetFlag("packed-weights");
        options.RejectUnknown();
        return ConcurrentBenchmark.Run(model, threads, streams, prompt, decode, rounds, interference, llamaBin, refresh, packed, Console.Out);
    }

    private static int ConcurrentOne(CommandArguments options)
    {
        string model = options.GetRequiredString("model");
        int threads = options.GetInt("threads", 2);
        int streams = options.GetInt("streams", 1);
        int prompt = options.GetInt("prompt", 128);
        int decode = options.GetInt("decode", 128);
        int interference = options.GetInt("interference", 0);
        int? chunk = options.GetString("chunk") is null ? null : options.GetInt("chunk", 0);
        bool refresh = options.GetFlag("refresh-page-cache");
        bool packed = options.GetFlag("packed-weights");
        options.RejectUnknown();
        var result = ConcurrentBenchmark.Measure(model, threads, streams, prompt, decode, interference, chunk, refresh, packed);
        Console.WriteLine(ConcurrentBenchmark.ResultMarker + JsonSerializer.Serialize(result));
        return 0;
    }

    private static int Embeddings(CommandArguments options)
    {
        string model = options.GetRequiredString("model");
        int threads = options.GetInt("threads", 2);
        int texts = options.GetInt("texts", 256);
        int minTokens = options.GetInt("min-tokens", 16);
        int maxTokens = options.GetInt("max-tokens", 512);
        int rounds = options.GetInt("rounds", 2);
        string? llamaBin = options.GetString("llama-bin");
        int seed = options.GetInt("seed", 1);
        options.RejectUnknown();
        if (minTokens < 2 || maxTokens < minTokens || texts < 4 || rounds < 1)
        {
            throw new ArgumentException("Need --min-tokens >= 2, --max-tokens >= --min-tokens, --texts >= 4 and --rounds >= 1.");
        }

        return E2e.EmbeddingBenchmark.Run(model, threads, texts, minTokens, maxTokens, rounds, llamaBin, seed, Console.Out);
    }

    private static int Grammar(CommandArguments options)
    {
        int walks = options.GetInt("walks", 20);
        int compileRuns = options.GetInt("compile-runs", 21);
        int seed = options.GetInt("seed", 1);
        string[]? schemas = options.GetString("schemas")?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        bool decode = !options.GetFlag("no-decode");
        var constrainedDecode = ConstrainedDecodeRun(options);
        options.RejectUnknown();
        int result = Constraints.GrammarBenchmark.Run(walks, compileRuns, seed, schemas, Console.Out);
        return decode && result == 0 ? constrainedDecode() : result;
    }

    private static int ConstrainedDecode(CommandArguments options)
    {
        var constrainedDecode = ConstrainedDecodeRun(options);
        options.RejectUnknown();
        return constrainedDecode();
    }

    /// <summary>Reads constrained-decode's options, which grammar takes too, and returns the run they describe.</summary>
    private static Func<int> ConstrainedDecodeRun(CommandArguments options)
    {
        string model = options.GetString("model") ?? RepositoryPaths.TinyQwen3Fixture;
        int threads = options.GetInt("threads", 1);
        int tokens = options.GetInt("tokens", 128);
        int rounds = options.GetInt("rounds", 5);
        return () => Constraints.ConstrainedDecodeBenchmark.Run(model, threads, tokens, rounds, Console.Out);
    }

    private static int ChatPrefill(CommandArguments options)
    {
        string model = options.GetRequiredString("model");
        int threads = options.GetInt("threads", 2);
        int words = options.GetInt("words", 1000);
        int rounds = options.GetInt("rounds", 4);
        options.RejectUnknown();
        return ChatPrefillBenchmark.Run(model, threads, words, rounds, Console.Out);
    }

    private static int Soak(CommandArguments options)
    {
        string model = options.GetString("model") ?? RepositoryPaths.TinyQwen3Fixture;
        int conversations = options.GetInt("conversations", 16);
        int minutes = options.GetInt("minutes", 10);
        int threads = options.GetInt("threads", 2);
        int seed = options.GetInt("seed", 1);
        options.RejectUnknown();
        return new Soak.SoakBenchmark(model, conversations, TimeSpan.FromMinutes(minutes), threads, seed).Run(Console.Out);
    }

    private static int ServerSoak(CommandArguments options)
    {
        int clients = options.GetInt("clients", 8);
        int minutes = options.GetInt("minutes", 10);
        int threads = options.GetInt("threads", 2);
        int seed = options.GetInt("seed", 1);
        options.RejectUnknown();
        return new Server.ServerSoakBenchmark(clients, TimeSpan.FromMinutes(minutes), threads, seed).RunAsync(Console.Out).GetAwaiter().GetResult();
    }

    private static int ServerLoad(CommandArguments options)
    {
        string model = options.GetRequiredString("model");
        string gguf = options.GetString("gguf") ?? Path.Combine(model, ModelGenerator.GgufFileName);
        string? llamaBin = options.GetString("llama-bin");
        int[] clients = options.GetIntList("clients", [1, 4, 8]);
        int requests = options.GetInt("requests", 4);
        int promptWords = options.GetInt("prompt-words", 115);
        int decode = options.GetInt("decode", 128);
        int rounds = options.GetInt("rounds", 2);
        int threads = options.GetInt("threads", 2);
        bool packed = options.GetFlag("packed-weights");
        options.RejectUnknown();
        return new Server.ServerLoadBenchmark(model, gguf, llamaBin, clients, requests, promptWords, decode, rounds, threads, packed).RunAsync(Console.Out).GetAwaiter().GetResult();
    }

    /// <summary>The server executable's host, run as a child of server-soak and server-load: its command line as given.</summary>
    private static int ServerHostCommand(string[] args)
    {
        var host = Qwen3.Net.Server.ServerHost.Build(Qwen3.Net.Server.ServerCommandLine.Parse(args));
        using (host.Model)
        {
            host.App.Run();
        }

        return 0;
    }

    private static int Generate(CommandArguments options)
    {
        var shape = ModelShape.FromSizeName(options.GetString("size") ?? "1.7b");
        ulong seed = options.GetUInt64("seed", 42);
        string output = options.GetString("out") ?? Path.Combine(RepositoryPaths.GeneratedModels, $"qwen3-{shape.Name}-seed{seed}");
        bool gguf = !options.GetFlag("no-gguf");
        bool hash = options.GetFlag("hash");
        options.RejectUnknown();

        Console.WriteLine($"Generating Qwen3-{shape.Name} (seed {seed}) into {output}");
        new ModelGenerator(shape, seed, RepositoryPaths.TinyQwen3Fixture).Generate(output, gguf, Console.Out);
        if (hash)
        {
            foreach (var (file, sha) in ModelGenerator.HashWeightFiles(output))
            {
                Console.WriteLine($"sha256 {sha}  {file}");
            }
        }
        return 0;
    }

    private static int ConvertGguf(CommandArguments options)
    {
        string model = options.GetRequiredString("model");
        string output = options.GetString("out") ?? Path.Combine(model, ModelGenerator.GgufFileName);
        options.RejectUnknown();

        Qwen3GgufExport.ConvertFolder(model, output, ModelShape.FromConfigJson(model).Name);
        Console.WriteLine($"Wrote {output}");
        return 0;
    }

    private static int CheckGguf(CommandArguments options)
    {
        string? gguf = options.GetString("gguf");
        options.RejectUnknown();

        string fixture = RepositoryPaths.TinyQwen3Fixture;
        string golden = Path.Combine(fixture, "golden");
        if (gguf is not null)
        {
            return Report(GoldenLogitsCheck.Run(gguf, golden, 0.25f, Console.Out));
        }

        Directory.CreateDirectory(RepositoryPaths.GeneratedModels);
        bool ok = true;
        foreach (var (type, tolerance) in new[] { (GgmlType.F32, 1e-3f), (GgmlType.BF16, 0.25f) })
        {
            string path = Path.Combine(RepositoryPaths.GeneratedModels, $"tiny-qwen3-{type.ToString().ToLowerInvariant()}.gguf");
            using (var checkpoint = new SafetensorsCheckpoint(fixture))
            {
                Qwen3GgufExporter.Export(path, ModelShape.FromConfigJson(fixture), checkpoint, fixture, "tiny-qwen3", type);
            }
            Console.WriteLine($"{type} matrices ({path}), tolerance {tolerance}:");
            ok &= GoldenLogitsCheck.Run(path, golden, tolerance, Console.Out);
        }
        return Report(ok);

        static int Report(bool ok)
        {
            Console.WriteLine(ok ? "GGUF check passed" : "GGUF check FAILED");
            return ok ? 0 : 1;
        }
    }

    private static int EndToEnd(CommandArguments options)
    {
        var benchmark = new E2eBenchmark(
            options.GetRequiredString("model"),
            options.GetIntList("threads", [Environment.ProcessorCount]),
            options.GetIntList("prompt", [128, 512]),
            options.GetInt("decode", 128),
            options.GetInt("rounds", 2),
            options.GetString("engines")?.Split(',', StringSplitOptions.RemoveEmptyEntries) ?? EngineCatalog.Available.ToArray(),
            options.GetFlag("refresh-page-cache"));
        options.RejectUnknown();
        return benchmark.Run(Console.Out);
    }

    private static int EndToEndOne(CommandArguments options)
    {
        string engine = options.GetRequiredString("engine");
        string model = options.GetRequiredString("model");
        int threads = options.GetInt("threads", Environment.ProcessorCount);
        int[] prompts = options.GetIntList("prompt", [128, 512]);
        int decode = options.GetInt("decode", 128);
        options.RejectUnknown();

        var result = EngineRun.Measure(engine, model, threads, prompts, decode);
        Console.WriteLine(E2eBenchmark.ResultMarker + JsonSerializer.Serialize(result));
        return 0;
    }

    private static int ModelKernel(CommandArguments options)
    {
        string model = options.GetRequiredString("model");
        int threads = options.GetInt("threads", 2);
        int[] tokens = options.GetIntList("tokens", [1, 4]);
        int rounds = options.GetInt("rounds", 8);
        bool refresh = options.GetFlag("refresh-page-cache");
        var selection = new ModelKernelProbe.Selection(
            options.GetString("type"), options.GetInt("matrices", int.MaxValue), options.GetInt("rows", int.MaxValue), options.GetFlag("each-round"),
            options.GetFlag("decoding"));
        options.RejectUnknown();
        if (threads < 1 || rounds < 1 || tokens.Any(t => t < 1) || selection.Matrices < 1 || selection.Rows < 1)
        {
            throw new ArgumentException("Need --threads, --rounds, --tokens, --matrices and --rows >= 1.");
        }

        ModelKernelProbe.Run(model, threads, tokens, rounds, refresh, selection, Console.Out);
        return 0;
    }

    private static int Resident(CommandArguments options)
    {
        string model = options.GetRequiredString("model");
        int threads = options.GetInt("threads", 2);
        int prompt = options.GetInt("prompt", 128);
        int decode = options.GetInt("decode", 64);
        options.RejectUnknown();
        if (threads < 1 || prompt < 1 || decode < 1)
        {
            throw new ArgumentException("Need --threads, --prompt and --decode >= 1.");
        }

        ResidentMemoryProbe.Run(model, threads, prompt, decode, Console.Out);
        return 0;
    }

    private static int DecodeKernel(CommandArguments options)
    {
        int threads = options.GetInt("threads", 2);
        int[] tokens = options.GetIntList("tokens", [1, 2, 3, 4]);
        int[] columns = options.GetIntList("columns", [2048, 6144]);
        int rounds = options.GetInt("rounds", 12);
        int weightsKib = options.GetInt("weights-kib", DecodeKernelProbe.DefaultWeightKib);
        bool decoding = options.GetFlag("decoding");
        options.RejectUnknown();
        if (threads < 1 || rounds < 1 || weightsKib < 1 || tokens.Any(t => t < 1) || columns.Any(c => c < 1))
        {
            throw new ArgumentException("Need --threads, --rounds, --weights-kib, --tokens and --columns >= 1.");
        }

        DecodeKernelProbe.Run(threads, tokens, columns, rounds, weightsKib, decoding, Console.Out);
        return 0;
    }

    private static int Probe(CommandArguments options)
    {
        int[] threads = options.GetIntList("threads", [1, Environment.ProcessorCount]);
        options.RejectUnknown();

        using var probe = new MemoryBandwidthProbe();
        foreach (int t in threads)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{t} thread(s): read bandwidth {probe.MeasureGBps(t):F1} GB/s, FP32 FMA peak {FmaPeakProbe.MeasureGflops(t):F1} GFLOP/s ({FmaPeakProbe.Isa})"));
        }
        return 0;
    }
}
