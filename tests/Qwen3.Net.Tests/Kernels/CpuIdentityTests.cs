using System.Runtime.InteropServices;
using Qwen3.Net.Kernels;

namespace Qwen3.Net.Tests.Kernels;

/// <summary>
/// The CPUID readings that pick a kernel's prefetch and batch limits per CPU family, checked against what Linux reports
/// of the same CPU (/proc/cpuinfo and the cache description in sysfs), so a wrong bit or leaf shows here.
/// </summary>
public sealed class CpuIdentityTests
{
    [X86LinuxFact]
    public void The_vendor_and_family_read_by_CPUID_are_those_Linux_reports()
    {
        string vendor = CpuInfo("vendor_id");
        int family = int.Parse(CpuInfo("cpu family"), System.Globalization.CultureInfo.InvariantCulture);

        CpuIdentity.IsIntel.Should().Be(vendor == "GenuineIntel");
        CpuIdentity.AmdFamily.Should().Be(vendor == "AuthenticAMD" ? family : 0);
    }

    [X86LinuxFact]
    public void The_L1_data_cache_size_read_by_CPUID_is_the_one_Linux_reports_on_AMD()
    {
        if (CpuInfo("vendor_id") != "AuthenticAMD")
        {
            CpuIdentity.L1DataKiB.Should().Be(0, "only AMD's leaf 8000_0005h is read");
            return;
        }

        string cache = "/sys/devices/system/cpu/cpu0/cache";
        string index = Directory.GetDirectories(cache, "index*").Single(d =>
            File.ReadAllText(Path.Combine(d, "level")).Trim() == "1" && File.ReadAllText(Path.Combine(d, "type")).Trim() == "Data");
        string size = File.ReadAllText(Path.Combine(index, "size")).Trim();
        size.Should().EndWith("K");
        CpuIdentity.L1DataKiB.Should().Be(int.Parse(size[..^1], System.Globalization.CultureInfo.InvariantCulture));
    }

    private static string CpuInfo(string key) =>
        File.ReadLines("/proc/cpuinfo")
            .Select(line => line.Split(':', 2))
            .First(parts => parts.Length == 2 && parts[0].Trim() == key)[1].Trim();
}

/// <summary>A test that compares CPUID with Linux's view of the CPU: skipped, with the reason, off Linux or off x86.</summary>
public sealed class X86LinuxFactAttribute : FactAttribute
{
    public X86LinuxFactAttribute() =>
        Skip = LinuxOnly.SkipReason("/proc/cpuinfo and /sys/devices/system/cpu are Linux's")
            ?? (RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.X86 ? null : "CPUID is x86's");
}
