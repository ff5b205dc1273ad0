namespace Qwen3.Net.Benchmarks.E2e;

/// <summary>Linux's per-process memory figures; each engine runs in its own process so they are its own.</summary>
public static class ProcessMemory
{
    /// <summary>VmHWM: the peak resident set size, in bytes.</summary>
    public static long PeakResidentBytes() => ReadStatusKilobytes("VmHWM:") * 1024;

    private static long ReadStatusKilobytes(string field)
    {
        foreach (string line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith(field, StringComparison.Ordinal))
            {
                return long.Parse(line[field.Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
            }
        }
        throw new InvalidOperationException($"/proc/self/status has no {field} line.");
    }
}
