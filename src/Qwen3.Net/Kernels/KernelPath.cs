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
/// QWEN3NET_QUANTIZED_KERNELS forces the int8 kernels' path alone (<see cref="Quantized"/>).
/// </summary>
internal static class KernelPaths
{
    public const string EnvironmentVariable = "QWEN3NET_KERNELS";

    public const string QuantizedEnvironmentVariable = "QWEN3NET_QUANTIZED_KERNELS";

    public static readonly KernelPath Default = Choose(EnvironmentVariable, Best);

    /// <summary>
    /// The path of the int8 kernels of quantized weights: <see cref="Default"/> unless QWEN3NET_QUANTIZED_KERNELS forces
    /// one, so a model can run through their scalar references with every other kernel (attention) unchanged.
    /// </summary>
    public static readonly KernelPath Quantized = Choose(QuantizedEnvironmentVariable, Default);

    public static KernelPath Best =>
        IsSupported(KernelPath.Avx512) ? KernelPath.Avx512 : IsSupported(KernelPath.Avx2) ? KernelPath.Avx2 : KernelPath.Portable;

    public static bool IsSupported(KernelPath path) => path switch
    {
        KernelPath.Avx512 => Avx512F.IsSupported && Avx512BW.IsSupported && Avx512DQ.IsSupported && Fma.IsSupported,
        KernelPath.Avx2 => Avx2.IsSupported && Fma.IsSupported,
        _ => true,
    };

    private static KernelPath Choose(string variable, KernelPath unset)
    {
        string? forced = Environment.GetEnvironmentVariable(variable);
        if (string.IsNullOrWhiteSpace(forced))
        {
            return unset;
        }

        if (!Enum.TryParse(forced.Trim(), ignoreCase: true, out KernelPath path) || !Enum.IsDefined(path))
        {
            throw new NotSupportedException($"{variable}='{forced}' is not one of scalar, portable, avx2, avx512.");
        }

        // Silently running another path would make a "forced AVX-512" test run prove nothing.
        if (!IsSupported(path))
        {
            throw new NotSupportedException($"{variable}={forced}, but this CPU (or the DOTNET_Enable* settings) does not support it.");
        }

        return path;
    }
}
