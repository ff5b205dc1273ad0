using Qwen3.Net.Kernels;
using Qwen3.Net.Kernels.Quantized;
using Qwen3.Net.Loading;

namespace Qwen3.Net.Model;

/// <summary>
/// A model's BF16 and Q8_0 weight matrices also kept in the prompt tiles' packed layouts
/// (<see cref="Qwen3ModelOptions.PackedWeights"/>), one block of native memory per matrix, packed once at load on the
/// model's threads and freed with the model. The token embeddings stay in the map only: a lookup reads a few rows,
/// never a panel. A BF16 matrix's pages of the map are dropped from the process once it is packed, since only its
/// panels are read from then on, so the weights count once in its resident memory; a Q8_0 matrix's stay, for the
/// matrix-vector kernel that multiplies one token.
/// </summary>
internal sealed unsafe class PackedPanels : IDisposable
{
    private readonly List<HugePageBlock> _blocks = [];

    private PackedPanels(Qwen3Weights weights) => Weights = weights;

    /// <summary>The weights whose matrices read their panels here (the model's own where none could be kept).</summary>
    public Qwen3Weights Weights { get; private set; }

    /// <summary>
    /// Packs every matrix of <paramref name="weights"/> that can be kept for the path that multiplies it, sharing the
    /// work out on <paramref name="pool"/>: BF16 matrices for <paramref name="path"/> (<see cref="MatMul.CanKeepPanels"/>;
    /// not on the scalar path), Q8_0 matrices for <paramref name="quantizedPath"/> where it has the int8 prompt tile
    /// (AVX-512, AVX2). Other matrices stay as they are.
    /// </summary>
    /// <param name="weights">The weights, read from <paramref name="store"/>'s maps.</param>
    /// <param name="store">The maps, whose pages of each BF16 matrix are dropped as soon as it is packed, so the
    /// process never holds the whole model twice.</param>
    /// <param name="pool">The model's threads.</param>
    /// <param name="path">The path of the BF16 products.</param>
    /// <param name="quantizedPath">The path of the int8 products.</param>
    /// <exception cref="InsufficientMemoryException">The panels would not fit in the memory available.</exception>
    public static PackedPanels Pack(Qwen3Weights weights, TensorStore store, WorkerPool pool, KernelPath path, KernelPath quantizedPath)
    {
        var panels = new PackedPanels(weights);
        bool plain = path != KernelPath.Scalar;
        bool quantized = quantizedPath is KernelPath.Avx512 or KernelPath.Avx2;
        bool CanKeep(in WeightMatrix w) => w.IsQuantized
            ? quantized && QuantizedMatMul.CanKeepPanels(w.Quantized)
            : plain && MatMul.CanKeepPanels(w);
        long Bytes(in WeightMatrix w) => w.IsQuantized ? QuantizedMatMul.PanelBytes(w.Quantized) : MatMul.PanelBytes(w, path);
        int Count(in WeightMatrix w) => w.IsQuantized ? QuantizedMatMul.PanelCount(w.Quantized) : MatMul.PanelCount(w, path);
        try
        {
            // Sized first, so the memory is checked before any of it is taken.
            WeightMatrix[] kept = [.. weights.Layers
                .SelectMany(l => new[] { l.QProj, l.KProj, l.VProj, l.OProj, l.GateProj, l.UpProj, l.DownProj })
                .Concat(weights.LmHead is { } head ? [head] : [])
                .Where(w => CanKeep(w))];
            if (kept.Length == 0)
            {
                return panels;
            }

            AvailableMemory.Ensure(
                kept.Sum(w => Bytes(w)),
                "Qwen3ModelOptions.PackedWeights (the weights kept packed beside the memory map)",
                "Load the model without PackedWeights, or a smaller quantized GGUF of it.");

            var matrices = new WeightMatrix[kept.Length];
            for (int i = 0; i < kept.Length; i++)
            {
                var block = new HugePageBlock(Bytes(kept[i]));
                panels._blocks.Add(block);
                matrices[i] = kept[i].WithPanels((byte*)block.Pointer, kept[i].IsQuantized ? QuantizedMatMul.PanelRows : MatMul.PromptPanelRows(path));
                var job = new PackJob(matrices[i], path);
                pool.Run(ref job, Count(kept[i]));
                if (!kept[i].IsQuantized)
                {
                    store.DropPages(kept[i].Data, kept[i].Rows * kept[i].RowStride);
                }
            }

            var byData = new Dictionary<nint, WeightMatrix>();
            foreach (var m in matrices)
            {
                byData[(nint)m.Data] = m;
            }

            WeightMatrix Packed(WeightMatrix w) => byData.TryGetValue((nint)w.Data, out var m) ? m : w;
            panels.Weights = weights with
            {
                Layers = [.. weights.Layers.Select(l => l with
                {
                    QProj = Packed(l.QProj),
                    KProj = Packed(l.KProj),
                    VProj = Packed(l.VProj),
                    OProj = Packed(l.OProj),
                    GateProj = Packed(l.GateProj),
                    UpProj = Packed(l.UpProj),
                    DownProj = Packed(l.DownProj),
                })],
                LmHead = weights.LmHead is { } lmHead ? Packed(lmHead) : null,
            };
            return panels;
        }
        catch
        {
            panels.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        foreach (var block in _blocks)
        {
            block.Dispose();
        }

        _blocks.Clear();
    }

    /// <summary>One panel of the matrix per item.</summary>
    private readonly struct PackJob(WeightMatrix w, KernelPath path) : IRangeJob
    {
        public void Execute(int start, int end, int worker)
        {
            if (w.IsQuantized)
            {
                QuantizedMatMul.PackPanels(w.Quantized, w.Panels, start, end);
            }
            else
            {
                MatMul.PackPanels(w, w.Panels, start, end, path);
            }
        }
    }
}
