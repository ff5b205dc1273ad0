using Qwen3.Net.Kernels;

namespace Qwen3.Net.Tests.Kernels;

/// <summary>A test of one kernel path, reported as skipped (with the reason) on a CPU that lacks it, never silently passed.</summary>
public sealed class KernelPathFactAttribute : FactAttribute
{
    public KernelPathFactAttribute(string path)
    {
        var kernelPath = Enum.Parse<KernelPath>(path);
        if (!KernelPaths.IsSupported(kernelPath))
        {
            Skip = $"This CPU (or DOTNET_Enable* settings) lacks the {kernelPath} instruction set.";
        }
    }
}
