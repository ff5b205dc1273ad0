using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
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

        // Some VMs (Firecracker) have no cache description in sysfs; Linux builds it on AMD from leaf 8000_001Dh, read
        // here by its own fields, and where the hypervisor hides that leaf too, the size each Zen family has.
        int? sysfs = SysfsL1DataKiB();
        int? topology = CacheTopologyL1DataKiB();
        if (sysfs is null && topology is null)
        {
            int family = CpuIdentity.AmdFamily;
            family.Should().BeInRange(0x17, 0x1A, "without sysfs or leaf 8000_001Dh only the Zen families' L1 sizes are known");
            CpuIdentity.L1DataKiB.Should().Be(family == 0x1A ? 48 : 32);
            return;
        }

        if (sysfs is { } fromSysfs)
        {
            CpuIdentity.L1DataKiB.Should().Be(fromSysfs, "sysfs describes the L1 data cache so");
        }

        if (topology is { } fromTopology)
        {
            CpuIdentity.L1DataKiB.Should().Be(fromTopology, "leaf 8000_001Dh describes the L1 data cache so");
        }
    }

    /// <summary>The L1 data cache's size in KiB from sysfs, or null where the kernel exposes no cache description.</summary>
    private static int? SysfsL1DataKiB()
    {
        string cache = "/sys/devices/system/cpu/cpu0/cache";
        if (!Directory.Exists(cache))
        {
            return null;
        }

        string index = Directory.GetDirectories(cache, "index*").Single(d =>
            File.ReadAllText(Path.Combine(d, "level")).Trim() == "1" && File.ReadAllText(Path.Combine(d, "type")).Trim() == "Data");
        string size = File.ReadAllText(Path.Combine(index, "size")).Trim();
        size.Should().EndWith("K");
        return int.Parse(size[..^1], System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// The L1 data cache's size in KiB from AMD's cache topology leaf 8000_001Dh (ways × partitions × line × sets), or
    /// null where CPUID does not offer it (the TOPOEXT bit, leaf 8000_0001h ECX bit 22).
    /// </summary>
    private static int? CacheTopologyL1DataKiB()
    {
        if ((uint)X86Base.CpuId(unchecked((int)0x80000000), 0).Eax < 0x8000001D
            || (X86Base.CpuId(unchecked((int)0x80000001), 0).Ecx & (1 << 22)) == 0)
        {
            return null;
        }

        for (int subleaf = 0; subleaf < 16; subleaf++)
        {
            (int eax, int ebx, int ecx, _) = X86Base.CpuId(unchecked((int)0x8000001D), subleaf);
            int type = eax & 0x1F;
            if (type == 0)
            {
                break;
            }

            if (type == 1 && ((eax >> 5) & 7) == 1)
            {
                long ways = ((uint)ebx >> 22) + 1, partitions = ((ebx >> 12) & 0x3FF) + 1, line = (ebx & 0xFFF) + 1, sets = (uint)ecx + 1L;
                return (int)(ways * partitions * line * sets / 1024);
            }
        }

        return null;
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
