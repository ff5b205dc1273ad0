using Qwen3.Net.Benchmarks.Checkpoints;
using Qwen3.Net.Benchmarks.Gguf;

namespace Qwen3.Net.Benchmarks;

public static class Program
{
    private const string Usage = """
        Qwen3.Net benchmarks

          generate     [--size 0.6b|1.7b|4b] [--out DIR] [--seed N] [--no-gguf] [--hash]
                       Synthetic-weight Qwen3 in Hugging Face layout (+ model-bf16.gguf for llama.cpp).
          convert-gguf --model DIR [--out FILE]
                       An existing BF16 Hugging Face Qwen3 folder as model-bf16.gguf.
          check-gguf   [--gguf FILE]
                       Runs the tiny-qwen3 fixture through our GGUF writer and llama.cpp and compares the logits
                       with the fixture's float64 golden values (default: converts the fixture first).
        """;

    public static int Main(string[] args)
    {
        if (args.Length == 0)
        {
            Console.WriteLine(Usage);
            return 2;
        }
        try
        {
            var options = new CommandArguments(args.Skip(1));
            return args[0] switch
            {
                "generate" => Generate(options),
                "convert-gguf" => ConvertGguf(options),
                "check-gguf" => CheckGguf(options),
                _ => throw new ArgumentException($"Unknown command '{args[0]}'.\n{Usage}"),
            };
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine(e.Message);
            return 2;
        }
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

        var shape = ModelShape.FromConfigJson(model);
        using var checkpoint = new SafetensorsCheckpoint(model);
        Qwen3GgufExporter.Export(output, shape, checkpoint, model, shape.Name);
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
}
