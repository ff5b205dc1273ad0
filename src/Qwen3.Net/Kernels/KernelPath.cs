using System.Runtime.Intrinsics.X86;

namespace Qwen3.Net.Kernels;

/// <summary>The instruction sets a kernel can be compiled for, slowest first.</summary>
internal enum KernelPath
{
    /// <summary>The definition, one float at a time: the reference the others are tested against.</summary>
    Scalar,

    /// <summary>Vector128 / TensorPrimitives only: runs on any CPU .NET supports.</summary>
    Portable,

    /// <summary>256-bit AVX2 with FMA.</summary>
    Avx2,

    /// <summary>512-bit AVX-512 F/BW with FMA.</summary>
    Avx512,
}

/// <summary>
/// Which <see cref="KernelPath"/> the model uses, fixed at start-up: the fastest the CPU has, unless the environment
/// variable QWEN3NET_KERNELS (scalar, portable, avx2, avx512) forces one, so a whole test run, goldens included,
/// can be repeated on each path. Kernel tests pass a path explicitly instead, so they can run in parallel.
/// </summary>
internal static class KernelPaths
{
    public const string EnvironmentVariable = "QWEN3NET_KERNELS";

    public static readonly KernelPath Default = Choose(Environment.GetEnvironmentVariable(EnvironmentVariable));

    public static KernelPath Best =>
        IsSupported(KernelPath.Avx512) ? KernelPath.Avx512 : IsSupported(KernelPath.Avx2) ? KernelPath.Avx2 : KernelPath.Portable;

    public static bool IsSupported(KernelPath path) => path switch
    {
        KernelPath.Avx512 => Avx512F.IsSupported && Avx512BW.IsSupported && Fma.IsSupported,
        KernelPath.Avx2 => Avx2.IsSupported && Fma.IsSupported,
        _ => true,
    };

    private static KernelPath Choose(string? forced)
    {
        if (string.IsNullOrWhiteSpace(forced))
        {
            return Best;
        }

        if (!Enum.TryParse(forced.Trim(), ignoreCase: true, out KernelPath path) || !Enum.IsDefined(path))
        {
            throw new NotSupportedException($"{EnvironmentVariable}='{forced}' is not one of scalar, portable, avx2, avx512.");
        }

        // Silently running another path would make a "forced AVX-512" test run prove nothing.
        if (!IsSupported(path))
        {
            throw new NotSupportedException($"{EnvironmentVariable}={forced}, but this CPU (or the DOTNET_Enable* settings) does not support it.");
        }

        return path;
    }
}
