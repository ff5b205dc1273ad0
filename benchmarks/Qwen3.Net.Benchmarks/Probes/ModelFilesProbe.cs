using System.IO.MemoryMappedFiles;
using Qwen3.Net.Loading;

namespace Qwen3.Net.Benchmarks.Probes;

/// <summary>
/// Read bandwidth of the model files themselves, memory-mapped the way the engines map them. On some VMs this is far
/// below <see cref="MemoryBandwidthProbe"/>'s figure for fresh anonymous memory: file pages that have sat in the page
/// cache for a while were measured here at 3–5 GB/s on one thread, against 25–35 GB/s once evicted and read back.
/// Printing it next to the engines' figures shows which kind of pages a run was made on.
/// </summary>
public static unsafe class ModelFilesProbe
{
    // The sums land here so the JIT cannot drop them as dead code.
    private static float s_sink;

    /// <summary>One warm-up pass (page faults), then the best of <paramref name="repetitions"/> timed passes, in GB/s.</summary>
    public static double MeasureGBps(IReadOnlyList<string> files, int threadCount, int repetitions = 3)
    {
        var maps = files.Select(f => MemoryMappedFile.CreateFromFile(f, FileMode.Open, null, 0, MemoryMappedFileAccess.Read)).ToList();
        var views = maps.Select(m => m.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read)).ToList();
        try
        {
            var ranges = new List<(nint Start, long Floats)>();
            foreach (var (view, file) in views.Zip(files))
            {
                byte* start = null;
                view.SafeMemoryMappedViewHandle.AcquirePointer(ref start);
                ranges.Add(((nint)start, new FileInfo(file).Length / sizeof(float) / 64 * 64));
            }

            long bytes = ranges.Sum(r => r.Floats) * sizeof(float);
            TimePass(ranges, threadCount);
            double best = 0;
            for (int r = 0; r < repetitions; r++)
            {
                best = Math.Max(best, bytes / TimePass(ranges, threadCount) / 1e9);
            }
            return best;
        }
        finally
        {
            foreach (var view in views)
            {
                view.SafeMemoryMappedViewHandle.ReleasePointer();
                view.Dispose();
            }
            maps.ForEach(m => m.Dispose());
        }
    }

    /// <summary>
    /// Drops the files from the page cache (Linux, posix_fadvise; affects every process using them). The next
    /// <see cref="MeasureGBps"/> faults them back in through a memory map, as an engine starting on a cold cache would:
    /// on this machine's kernel (6.18, ext4) that brings them in as large folios mapped with 2 MB entries.
    /// </summary>
    public static void Evict(IReadOnlyList<string> files)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("--refresh-page-cache needs Linux (posix_fadvise).");
        }

        if (!PageCache.Drop(files))
        {
            throw new IOException($"posix_fadvise(DONTNEED) failed on one of {string.Join(", ", files)}.");
        }
    }

    private static double TimePass(List<(nint Start, long Floats)> ranges, int threadCount)
    {
        double seconds = SimultaneousThreads.Time(threadCount, t =>
        {
            double sum = 0;
            foreach (var (start, floats) in ranges)
            {
                // Each thread reads its own contiguous share of every file, as the engines split each matrix.
                long per = floats / threadCount / 64 * 64;
                long begin = t * per;
                long count = t == threadCount - 1 ? floats - begin : per;
                sum += MemoryBandwidthProbe.Sum((float*)start + begin, count);
            }
            return sum;
        }, out double total);
        s_sink += (float)total;
        return seconds;
    }
}
