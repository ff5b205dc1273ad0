using System.Runtime.InteropServices;
using LLama;
using LLama.Common;
using LLama.Native;

namespace Qwen3.Net.Benchmarks.Engines;

/// <summary>
/// llama.cpp through LLamaSharp's low-level API: batches into <c>llama_decode</c>, logits requested for the last
/// token only, no sampler chain. CPU only.
/// </summary>
public sealed class LlamaCppEngine : IInferenceEngine
{
    /// <summary>llama.cpp's batch and micro-batch; prompts longer than this are fed in several decodes.</summary>
    public const int BatchSize = 512;

    private readonly LLamaWeights _weights;
    private readonly LLamaContext _context;
    private readonly LLamaBatch _batch = new();
    private int _position;

    static LlamaCppEngine()
    {
        // llama.cpp logs every tensor at load; silence it unless asked, before the native library is first loaded.
        if (Environment.GetEnvironmentVariable("QWEN3NET_BENCH_LLAMA_LOG") != "1")
        {
            NativeLibraryConfig.All.WithLogCallback((_, _) => { });
        }
    }

    /// <param name="f32KvCache">
    /// llama.cpp stores K and V as F16 by default (and its CPU flash attention rounds Q to F16 too), its usual speed
    /// setting and what the benchmark uses; F32 without flash attention removes that rounding where logits are
    /// compared with a float64 reference.
    /// </param>
    public LlamaCppEngine(string ggufPath, int threads, int contextSize, bool f32KvCache = false, bool? memoryMap = null)
    {
        var parameters = new ModelParams(ggufPath)
        {
            GpuLayerCount = 0,
            ContextSize = (uint)contextSize,
            BatchSize = BatchSize,
            UBatchSize = BatchSize,
            Threads = threads,
            BatchThreads = threads,
        };
        if (memoryMap is { } map)
        {
            parameters.LoadMode = map ? LLamaLoadMode.MemoryMap : LLamaLoadMode.None;
        }

        if (f32KvCache)
        {
            parameters.TypeK = GGMLType.GGML_TYPE_F32;
            parameters.TypeV = GGMLType.GGML_TYPE_F32;
            parameters.FlashAttention = false;
        }
        _weights = LLamaWeights.LoadFromFile(parameters);
        _context = _weights.CreateContext(parameters);
    }

    /// <summary>Which ggml CPU features the loaded native library was built with and detected (AVX512, BF16, ...).</summary>
    public string Description =>
        "llama.cpp via LLamaSharp 0.30.0: " + (Marshal.PtrToStringUTF8(NativeApi.llama_print_system_info()) ?? "").Trim();

    public ReadOnlySpan<float> Evaluate(ReadOnlySpan<int> tokens)
    {
        if (tokens.IsEmpty)
        {
            throw new ArgumentException("No tokens to evaluate.", nameof(tokens));
        }
        for (int start = 0; start < tokens.Length; start += BatchSize)
        {
            int count = Math.Min(BatchSize, tokens.Length - start);
            bool lastBatch = start + count == tokens.Length;
            _batch.Clear();
            for (int i = 0; i < count; i++)
            {
                _batch.Add(tokens[start + i], _position++, LLamaSeqId.Zero, logits: lastBatch && i == count - 1);
            }
            var result = _context.NativeHandle.Decode(_batch);
            if (result != DecodeResult.Ok)
            {
                throw new InvalidOperationException($"llama_decode failed: {result}.");
            }
        }
        return _context.NativeHandle.GetLogitsIth(_batch.TokenCount - 1);
    }

    public void Reset()
    {
        _context.NativeHandle.MemoryClear(true);
        _position = 0;
    }

    public void Dispose()
    {
        _context.Dispose();
        _weights.Dispose();
    }
}
