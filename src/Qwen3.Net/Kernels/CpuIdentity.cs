using System.Runtime.Intrinsics.X86;

namespace Qwen3.Net.Kernels;

/// <summary>
/// The CPU's vendor, AMD family and L1 data cache size, read from CPUID once, for the kernel choices that were measured
/// to differ by CPU family (docs/benchmarks.md). Off x86 every reading is false or 0.
/// </summary>
internal static class CpuIdentity
{
    /// <summary>Whether the vendor string is Intel's.</summary>
    public static bool IsIntel { get; } = VendorIs("GenuineIntel"u8);

    private static readonly bool IsAmd = VendorIs("AuthenticAMD"u8);

    /// <summary>The family (base plus extended: 19h for Zen 3 and Zen 4, 1Ah for Zen 5) where the vendor is AMD; 0 elsewhere.</summary>
    public static int AmdFamily { get; } = ReadAmdFamily();

    /// <summary>The L1 data cache's size in KiB as AMD's leaf 8000_0005h reports it (32 on Zen 4, 48 on Zen 5); 0 where the CPU is not AMD's.</summary>
    public static int L1DataKiB { get; } = ReadAmdL1DataKiB();

    private static int ReadAmdFamily()
    {
        if (!IsAmd)
        {
            return 0;
        }

        int eax = X86Base.CpuId(1, 0).Eax;
        int family = (eax >> 8) & 0xF;
        return family == 0xF ? family + ((eax >> 20) & 0xFF) : family;
    }

    private static int ReadAmdL1DataKiB()
    {
        if (!IsAmd || (uint)X86Base.CpuId(unchecked((int)0x80000000), 0).Eax < 0x80000005)
        {
            return 0;
        }

        return (int)((uint)X86Base.CpuId(unchecked((int)0x80000005), 0).Ecx >> 24);
    }

    /// <summary>Whether the vendor string (EBX, EDX, ECX of leaf 0) is <paramref name="vendor"/>.</summary>
    private static bool VendorIs(ReadOnlySpan<byte> vendor)
    {
        if (!X86Base.IsSupported)
        {
            return false;
        }

        (_, int ebx, int ecx, int edx) = X86Base.CpuId(0, 0);
        ReadOnlySpan<int> read = [ebx, edx, ecx];
        return System.Runtime.InteropServices.MemoryMarshal.AsBytes(read).SequenceEqual(vendor);
    }
}
