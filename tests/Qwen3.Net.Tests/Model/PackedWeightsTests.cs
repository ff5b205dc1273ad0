using System.Diagnostics;
using Qwen3.Net.Kernels;
using Qwen3.Net.Tests.Engine;

namespace Qwen3.Net.Tests.Model;

/// <summary>
/// <see cref="Qwen3ModelOptions.PackedWeights"/>: which matrices are kept, and a load refused for memory. The goldens and
/// batches over packed weights are <see cref="PackedGoldenLogitsTests"/> and <see cref="PackedBatchingTests"/>.
/// </summary>
[Collection(nameof(ThreadCountCollection))]
public sealed unsafe class PackedWeightsTests
{
    [Fact]
    public void Every_matrix_of_the_layers_and_the_head_is_kept_for_the_models_path_and_the_embeddings_are_not()
    {
        using var model = Qwen3Model.Load(Fixtures.TinyModelFolder, new Qwen3ModelOptions { ThreadCount = 2, PackedWeights = true });
        var weights = model.Weights;
        int panelRows = MatMul.PromptPanelRows(KernelPaths.Default);
        var matrices = weights.Layers
            .SelectMany(l => new[] { l.QProj, l.KProj, l.VProj, l.OProj, l.GateProj, l.UpProj, l.DownProj })
            .Append(weights.LmHead!.Value)
            .ToList();
        bool scalar = KernelPaths.Default == KernelPath.Scalar;
        foreach (var w in matrices)
        {
            (w.Panels != null).Should().Be(!scalar, "every layer matrix and the head are kept, except on the scalar path, which reads the map only");
            w.PanelRows.Should().Be(scalar ? 0 : panelRows);
        }

        (weights.EmbedTokens.Panels == null).Should().BeTrue("a lookup reads rows of the map");
        using var plain = Qwen3Model.Load(Fixtures.TinyModelFolder, new Qwen3ModelOptions { ThreadCount = 1 });
        (plain.Weights.Layers[0].QProj.Panels == null).Should().BeTrue("without the option nothing is copied");
    }

    [LinuxFact("pages are dropped by madvise, and read back from /proc/self/pagemap, on Linux only")]
    public void A_packed_bf16_matrix_leaves_the_process_s_resident_memory_and_forward_passes_do_not_map_it_back()
    {
        using var model = Qwen3Model.Load(Fixtures.TinyModelFolder, new Qwen3ModelOptions { ThreadCount = 2, PackedWeights = true });
        var weights = model.Weights;
        (weights.Layers[0].QProj.Panels != null).Should().BeTrue("this test needs a path that keeps panels");
        var layers = weights.Layers.SelectMany(l => new[] { l.QProj, l.KProj, l.VProj, l.OProj, l.GateProj, l.UpProj, l.DownProj }).ToList();
        var head = weights.LmHead!.Value;
        layers.Sum(w => WholePages(w).Count).Should().BeGreaterThan(20, "the test needs pages to look at");

        layers.Sum(w => ResidentPages.Mapped(WholePages(w))).Should().Be(0, "packing read every matrix from the map, then dropped its pages");
        ResidentPages.Mapped(WholePages(head)).Should().Be(0, "the tied head, the embeddings' bytes, is packed too");

        using var context = model.CreateContext();
        context.Evaluate([.. Enumerable.Range(1000, 24)]);
        context.Evaluate([7]);
        context.Evaluate([8]);

        layers.Sum(w => ResidentPages.Mapped(WholePages(w))).Should().Be(0, "a forward pass reads packed matrices from their panels, never from the map");
        ResidentPages.Mapped(WholePages(head)).Should().BeGreaterThan(0, "a lookup maps the embeddings' rows back, which shows that pages are seen when mapped");
    }

    private static (long First, int Count) WholePages(in WeightMatrix w) => ResidentPages.Inside((long)w.Data, (long)w.Data + w.Rows * w.RowStride);

    [Fact]
    public void A_copy_that_does_not_fit_in_memory_is_refused_at_load_and_leaves_no_threads()
    {
        int before = Process.GetCurrentProcess().Threads.Count;
        try
        {
            AvailableMemory.OverrideForTests = () => 0;
            FluentActions.Invoking(() => Qwen3Model.Load(Fixtures.TinyModelFolder, new Qwen3ModelOptions { ThreadCount = 8, PackedWeights = true }))
                .Should().Throw<InsufficientMemoryException>().WithMessage("*PackedWeights*");
        }
        finally
        {
            AvailableMemory.OverrideForTests = null;
        }

        // The runtime may start a thread of its own meanwhile (a timer, the finalizer); eight pool threads left would be 8 more.
        SpinWait.SpinUntil(() => Process.GetCurrentProcess().Threads.Count < before + 4, TimeSpan.FromSeconds(10))
            .Should().BeTrue("the model's threads stop when its load fails");
    }
}
