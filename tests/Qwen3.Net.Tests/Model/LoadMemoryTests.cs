using Qwen3.Net.Engine;
using Qwen3.Net.Loading.Gguf;
using Qwen3.Net.Tests.Engine;
using Qwen3.Net.Tests.Loading;

namespace Qwen3.Net.Tests.Model;

/// <summary>
/// What a model keeps resident beside its weights. In the collection that runs alone, so that the garbage collector's
/// figures are the load's and no other test's.
/// </summary>
[Collection(nameof(ThreadCountCollection))]
public sealed class LoadMemoryTests
{
    [Theory]
    [InlineData("folder")]
    [InlineData("gguf")]
    public void A_load_gives_back_the_memory_its_temporary_objects_took(string source)
    {
        using var temp = new TempFolder();
        string path = Fixtures.TinyModelFolder;
        if (source == "gguf")
        {
            path = temp.File("tiny-qwen3-bf16.gguf");
            Qwen3GgufExport.ConvertFolder(Fixtures.TinyModelFolder, path, "tiny-qwen3");
        }

        using var model = Qwen3Model.Load(path, new Qwen3ModelOptions { ThreadCount = 1 });

        // Parsing the tokenizer allocates about 90 MB (200 MB from a GGUF); without a decommitting collection the
        // garbage collector kept 27 MB (83 MB from a GGUF) committed over its live objects here.
        GCMemoryInfo last = GC.GetGCMemoryInfo();
        (last.TotalCommittedBytes - last.HeapSizeBytes).Should().BeLessThan(16 << 20, "the load ends with a collection that decommits what it frees");
    }

    [LinuxFact("resident pages are read from /proc/self/pagemap, on Linux only")]
    public unsafe void The_scratch_is_faulted_in_as_far_as_the_largest_step_reaches()
    {
        using var model = Qwen3Model.Load(Fixtures.TinyModelFolder, new Qwen3ModelOptions { ThreadCount = 2, MaxBatchTokens = 8192 });
        var state = model.Scheduler.State;
        using var context = model.CreateContext(4096);
        context.Evaluate([.. Enumerable.Range(1000, 24)]);
        context.Evaluate([7]);
        state.FaultedTokens.Should().Be(BatchScheduler.InitialScratchTokens, "steps of a few tokens use the scratch faulted in ahead, and no more");

        context.Evaluate([.. Enumerable.Range(2000, 3000)]);
        state.FaultedTokens.Should().BeInRange(2900, 3000, "the prompt's step (cut to whole passes of the prompt kernel) faults in its own scratch");

        // Whether pages past it are resident is not checked: the C allocator may hand out memory another allocation left resident.
        long start = (long)state.Gate.Pointer, perToken = (long)model.Config.IntermediateSize * sizeof(float);
        var prompt = ResidentPages.Inside(start, start + state.FaultedTokens * perToken);
        ResidentPages.Mapped(prompt).Should().Be(prompt.Count);
    }
}
