using System.Globalization;

namespace Qwen3.Net.Kernels;

/// <summary>
/// Checks that the machine has the memory for a large allocation before making it: on Linux an allocation past what is
/// available succeeds and the process is killed later, when the pages are touched, which no exception can report.
/// </summary>
internal static class AvailableMemory
{
    /// <summary>Memory left free for everything else after an allocation: the OS's caches, the GC, other processes.</summary>
    private const long Reserve = 256L << 20;

    /// <summary>Replaces what the OS says, for tests of the refusal; null in use.</summary>
    internal static Func<long>? OverrideForTests { get; set; }

    /// <summary>Checks the memory for a KV cache page.</summary>
    /// <exception cref="InsufficientMemoryException">Allocating <paramref name="bytes"/> would leave less than 256 MiB available.</exception>
    public static void Ensure(long bytes) => Ensure(
        bytes,
        "A KV cache page",
        "Evaluate fewer tokens at once (shorter contexts, fewer concurrent sequences), or lower Qwen3ModelOptions.RetainedCacheBytes.");

    /// <param name="bytes">The allocation's size.</param>
    /// <param name="what">What needs the memory, to start the message.</param>
    /// <param name="remedy">What the caller can do instead, to end the message.</param>
    /// <exception cref="InsufficientMemoryException">Allocating <paramref name="bytes"/> would leave less than 256 MiB available.</exception>
    public static void Ensure(long bytes, string what, string remedy)
    {
        long available = Available();
        if (available - bytes < Reserve)
        {
            throw new InsufficientMemoryException(string.Create(CultureInfo.InvariantCulture,
                $"{what} needs {bytes >> 20} MiB and only {Math.Max(0, available) >> 20} MiB of memory is available (256 MiB kept in reserve). {remedy}"));
        }
    }

    /// <summary>
    /// What the OS says can still be allocated: MemAvailable of /proc/meminfo on Linux (bounded by a container's limit as
    /// the GC sees it), otherwise the GC's view of total memory less the memory in use.
    /// </summary>
    private static long Available()
    {
        if (OverrideForTests is { } test)
        {
            return test();
        }

        var gc = GC.GetGCMemoryInfo();
        long byGc = gc.TotalAvailableMemoryBytes - gc.MemoryLoadBytes;
        if (OperatingSystem.IsLinux())
        {
            try
            {
                foreach (string line in File.ReadLines("/proc/meminfo"))
                {
                    if (line.StartsWith("MemAvailable:", StringComparison.Ordinal))
                    {
                        long kilobytes = long.Parse(line["MemAvailable:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
                        return Math.Min(kilobytes * 1024, gc.TotalAvailableMemoryBytes);
                    }
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
            {
                // Fall back to the GC's figures.
            }
        }

        return byGc;
    }
}
