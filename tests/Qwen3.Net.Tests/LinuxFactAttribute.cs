namespace Qwen3.Net.Tests;

/// <summary>A test of Linux behaviour, reported as skipped (with the reason) on other systems, never silently passed.</summary>
public sealed class LinuxFactAttribute : FactAttribute
{
    /// <param name="why">Why the test only means something on Linux; shown as the skip reason elsewhere.</param>
    public LinuxFactAttribute(string why) => Skip = LinuxOnly.SkipReason(why);
}

/// <summary>The <see cref="LinuxFactAttribute"/> of a theory.</summary>
public sealed class LinuxTheoryAttribute : TheoryAttribute
{
    /// <param name="why">Why the test only means something on Linux; shown as the skip reason elsewhere.</param>
    public LinuxTheoryAttribute(string why) => Skip = LinuxOnly.SkipReason(why);
}

internal static class LinuxOnly
{
    public static string? SkipReason(string why) => OperatingSystem.IsLinux() ? null : $"Linux only: {why}";
}

/// <summary>A test of Linux's transparent huge pages, skipped (with the reason) where the kernel has none.</summary>
public sealed class HugePageFactAttribute : FactAttribute
{
    /// <param name="why">Why the test needs transparent huge pages; shown as the skip reason elsewhere.</param>
    public HugePageFactAttribute(string why) =>
        Skip = LinuxOnly.SkipReason(why) ?? (Directory.Exists("/sys/kernel/mm/transparent_hugepage") ? null : $"no transparent huge pages in this kernel: {why}");
}
