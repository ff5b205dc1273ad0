using System.Reflection;
using Qwen3.Net.Kernels;

namespace Qwen3.Net.Tests.Kernels;

/// <summary>
/// How the kernels must be compiled (docs/architecture.md): fully optimized at the first call, and on their own. A kernel
/// inlined into a caller's Tier-1 code was cut off from its own helpers when the caller ran out of inlining budget, and
/// Q4_K decode ran at half speed and Q6_K at a tenth for the rest of the process. Speed cannot be asserted here, so the
/// flags that prevent it are.
/// </summary>
public sealed class KernelCompilationTests
{
    private const BindingFlags Declared = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance | BindingFlags.DeclaredOnly;

    [Fact]
    public void EveryAggressivelyOptimizedMethodIsNotInlined()
    {
        MethodBase[] optimized = typeof(MatMul).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(Declared).Cast<MethodBase>().Concat(t.GetConstructors(Declared)))
            .Where(m => m.MethodImplementationFlags.HasFlag(MethodImplAttributes.AggressiveOptimization))
            .ToArray();

        // The decode kernels whose Tier-1 inlining was measured must be among them, so the check cannot pass on nothing.
        string[] names = optimized.Select(m => $"{m.DeclaringType!.Name}.{m.Name}").ToArray();
        Assert.Contains("QuantizedMatMul.RowLoop", names);
        Assert.Contains("QuantizedMatMul.SuperDot", names);
        Assert.Contains("MatMul.MatVecRows", names);

        string[] inlinable = optimized
            .Where(m => !m.MethodImplementationFlags.HasFlag(MethodImplAttributes.NoInlining))
            .Select(m => $"{m.DeclaringType!.FullName}.{m.Name}")
            .ToArray();
        Assert.True(inlinable.Length == 0, "AggressiveOptimization without NoInlining: " + string.Join(", ", inlinable));
    }
}
