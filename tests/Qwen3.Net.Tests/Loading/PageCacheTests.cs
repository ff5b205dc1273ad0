using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using Qwen3.Net.Loading;

namespace Qwen3.Net.Tests.Loading;

public sealed class PageCacheTests
{
    /// <summary>The option changes only where the weights' pages come from, not a bit of the results.</summary>
    [Fact]
    public void A_model_loaded_with_a_refreshed_page_cache_gives_the_same_logits()
    {
        using var plain = Qwen3Model.Load(Fixtures.TinyModelFolder, new Qwen3ModelOptions { ThreadCount = 1 });
        using var refreshed = Qwen3Model.Load(Fixtures.TinyModelFolder, new Qwen3ModelOptions { ThreadCount = 1, RefreshPageCache = true });
        using var a = plain.CreateContext(16);
        using var b = refreshed.CreateContext(16);

        b.Evaluate([1, 2, 3, 4]).ToArray().Should().Equal(a.Evaluate([1, 2, 3, 4]).ToArray());
    }

    /// <summary>
    /// What the option does on Linux, to a copy of the tiny model's weights: the drop empties the page cache of the file,
    /// and the read back fills it again. (The large folios this is for depend on the kernel and file system; their
    /// effect is measured in docs/benchmarks.md, not asserted here.)
    /// </summary>
    [LinuxFact("posix_fadvise and mincore are Linux calls; elsewhere the option is documented as ignored")]
    public void The_refresh_drops_a_weight_file_from_the_page_cache_and_reads_it_back()
    {
        using var folder = new TempFolder();
        string weights = folder.File("model.safetensors");
        File.Copy(Path.Combine(Fixtures.TinyModelFolder, "model.safetensors"), weights);
        // Written pages are dirty until written back, and those are never dropped: write them back, then read them in.
        using (var stream = new FileStream(weights, FileMode.Open, FileAccess.ReadWrite))
        {
            stream.Flush(flushToDisk: true);
        }

        File.ReadAllBytes(weights);
        ResidentShare(weights).Should().BeGreaterThan(0.9, "the file was just read");

        PageCache.Drop([weights]);
        ResidentShare(weights).Should().BeLessThan(0.01, "nothing maps or reads the file between the drop and the count");

        PageCache.ReadBack([weights]);
        double share = ResidentShare(weights);
        share.Should().BeGreaterThan(0.99, "reading the file back brings all of it into the page cache");
    }

    /// <summary>A folder's other safetensors files (not the model's, by its index or name) are neither dropped nor read.</summary>
    [LinuxFact("posix_fadvise and mincore are Linux calls; elsewhere the option is documented as ignored")]
    public void The_refresh_reads_only_the_files_the_model_maps()
    {
        using var folder = new TempFolder();
        foreach (string file in Directory.GetFiles(Fixtures.TinyModelFolder))
        {
            File.Copy(file, folder.File(Path.GetFileName(file)));
        }

        string weights = folder.File("model.safetensors"), stray = folder.File("consolidated.safetensors");
        File.Copy(weights, stray);
        foreach (string file in new[] { weights, stray })
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.ReadWrite);
            stream.Flush(flushToDisk: true);
        }

        PageCache.Drop([weights, stray]);
        ResidentShare(stray).Should().BeLessThan(0.01, "nothing maps or reads the copy after the drop");

        using var model = Qwen3Model.Load(folder.Path, new Qwen3ModelOptions { ThreadCount = 1, RefreshPageCache = true });
        ResidentShare(weights).Should().BeGreaterThan(0.99, "the model's own file was read back");
        ResidentShare(stray).Should().BeLessThan(0.01, "a safetensors file the model does not map is left alone");
    }

    private static unsafe double ResidentShare(string path)
    {
        long length = new FileInfo(path).Length;
        using var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        using var view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* start = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref start);
        try
        {
            long pages = (length + 4095) / 4096;
            var vector = new byte[pages];
            fixed (byte* v = vector)
            {
                // The view starts at a page boundary (offset 0), as mincore requires.
                Mincore(start + view.PointerOffset, (nuint)length, v).Should().Be(0);
            }

            return vector.Count(b => (b & 1) != 0) / (double)pages;
        }
        finally
        {
            view.SafeMemoryMappedViewHandle.ReleasePointer();
        }
    }

    [DllImport("libc", EntryPoint = "mincore")]
    private static extern unsafe int Mincore(void* address, nuint length, byte* vector);
}
