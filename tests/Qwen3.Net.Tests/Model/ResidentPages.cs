namespace Qwen3.Net.Tests.Model;

/// <summary>Which of this process's pages are resident, read from /proc/self/pagemap (Linux only).</summary>
internal static class ResidentPages
{
    /// <summary>The pages wholly inside bytes [<paramref name="start"/>, <paramref name="end"/>): (first page's address, count).</summary>
    public static (long First, int Count) Inside(long start, long end)
    {
        long page = Environment.SystemPageSize;
        long first = (start + page - 1) & ~(page - 1);
        return (first, (int)Math.Max(0, ((end & ~(page - 1)) - first) / page));
    }

    /// <summary>How many of the pages are mapped (bit 63 of their entries).</summary>
    public static int Mapped((long First, int Count) pages)
    {
        using var pagemap = File.OpenHandle("/proc/self/pagemap");
        var entries = new byte[8 * pages.Count];
        int read = RandomAccess.Read(pagemap, entries, pages.First / Environment.SystemPageSize * 8);
        read.Should().Be(entries.Length);
        int mapped = 0;
        for (int i = 0; i < pages.Count; i++)
        {
            mapped += (int)(BitConverter.ToUInt64(entries, 8 * i) >> 63);
        }

        return mapped;
    }
}
