using Qwen3.Net.Benchmarks.Checkpoints;

namespace Qwen3.Net.Benchmarks.Engines;

/// <summary>The engines the end-to-end benchmark can run, by the name used on the command line.</summary>
public static class EngineCatalog
{
    public const string Qwen3Net = "qwen3net";
    public const string LlamaCpp = "llamacpp";

    /// <summary>
    /// llama.cpp reading its weights through a memory map, as Qwen3.Net does. Plain "llamacpp" (LLamaSharp's default)
    /// copies the whole file into anonymous memory at load; on a VM whose page-cache pages read slower than fresh
    /// anonymous memory, that alone changes decode speed, so the benchmark can show both.
    /// </summary>
    public const string LlamaCppMemoryMapped = "llamacpp-mmap";

    /// <summary>In the order the benchmark interleaves them; ratios are first over second.</summary>
    public static IReadOnlyList<string> Available { get; } = [Qwen3Net, LlamaCpp];

    /// <summary>Every engine name <see cref="Load"/> accepts.</summary>
    public static IReadOnlyList<string> All { get; } = [Qwen3Net, LlamaCpp, LlamaCppMemoryMapped];

    /// <param name="modelFolder">A folder written by <c>generate</c>: safetensors plus <c>model-bf16.gguf</c>.</param>
    public static IInferenceEngine Load(string engine, string modelFolder, int threads, int contextSize) => engine switch
    {
        Qwen3Net => new Qwen3NetEngine(modelFolder, threads, contextSize),
        LlamaCpp => new LlamaCppEngine(Path.Combine(modelFolder, ModelGenerator.GgufFileName), threads, contextSize),
        LlamaCppMemoryMapped => new LlamaCppEngine(Path.Combine(modelFolder, ModelGenerator.GgufFileName), threads, contextSize, memoryMap: true),
        _ => throw new ArgumentException($"Unknown engine '{engine}'; available: {string.Join(", ", All)}."),
    };
}
