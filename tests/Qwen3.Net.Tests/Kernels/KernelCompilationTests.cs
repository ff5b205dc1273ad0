using System.Diagnostics;
using System.Reflection;
using System.Text.RegularExpressions;
using Qwen3.Net.Kernels;

namespace Qwen3.Net.Tests.Kernels;

/// <summary>
/// How the kernels must be compiled (docs/architecture.md): fully optimized at the first call, and on their own. A kernel
/// inlined into a caller's Tier-1 code was cut off from its own helpers when the caller ran out of inlining budget, and
/// Q4_K decode ran at half speed and Q6_K at a tenth for the rest of the process. Speed cannot be asserted here, so the
/// flags that prevent it are, and the kernels' optimized code is read for calls to helpers meant to be inlined.
/// </summary>
public sealed class KernelCompilationTests
{
    private const BindingFlags Declared = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance | BindingFlags.DeclaredOnly;

    [Fact]
    public void EveryAggressivelyOptimizedMethodIsNotInlined()
    {
        MethodBase[] optimized = AggressivelyOptimized();

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

    /// <summary>
    /// The kernel tests run in a child process whose JIT prints the kernels' code (<c>DOTNET_JitDisasm</c>); every call
    /// from a kernel's optimized code into the library must be to a method that is meant to stay a call (NoInlining: the
    /// kernels themselves, the rare tails, the throw helpers). A helper the JIT had no budget left to inline is compiled
    /// on its own, first at Tier 0, and called at that speed once per few dozen weights: Q6_K one-token decode read
    /// 4–6 GB/s for the first rounds of a process, and 30 at best after, when a type test was kept in a local.
    /// The portable Vector128 kernels are left out: they run where no AVX2 is, and the four-token K-format and the small
    /// block formats' steps still leave helpers as calls there (docs/benchmarks.md).
    /// </summary>
    [KernelPathFact(nameof(KernelPath.Avx2))]
    public async Task NoKernelCallsAHelperMeantToBeInlined()
    {
        MethodBase[] kernels = AggressivelyOptimized();
        string listing = Path.Combine(Path.GetTempPath(), $"qwen3net-kernels-{Guid.NewGuid():N}.txt");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in new[]
        {
            "test", typeof(KernelCompilationTests).Assembly.Location,
            "--filter", "FullyQualifiedName~Qwen3.Net.Tests.Kernels.MatMulTests|FullyQualifiedName~QuantizedMatMulTests|FullyQualifiedName~AttentionTests",
            // One test class at a time: the JIT writes the listings of methods compiled at the same moment into each
            // other, and a portable kernel's calls then showed up under a 256-bit kernel's heading.
            "--", "xUnit.ParallelizeTestCollections=false",
        })
        {
            start.ArgumentList.Add(arg);
        }

        // The child is a test run of its own, not a part of this one.
        foreach (string name in start.Environment.Keys.Where(k => k.StartsWith("VSTEST", StringComparison.Ordinal) || k.StartsWith("TESTINGPLATFORM", StringComparison.Ordinal)).ToArray())
        {
            start.Environment.Remove(name);
        }

        start.Environment["DOTNET_JitDisasm"] = string.Join(' ', kernels.Select(m => m.Name).Distinct());
        start.Environment["DOTNET_JitStdOutFile"] = listing;
        try
        {
            using Process process = Process.Start(start)!;
            Task<string> stdout = process.StandardOutput.ReadToEndAsync();
            Task<string> stderr = process.StandardError.ReadToEndAsync();
            // Bounded: a child that hangs fails this test instead of holding up the run (it takes about 12 s).
            using (var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5)))
            {
                try
                {
                    await process.WaitForExitAsync(timeout.Token);
                }
                catch (OperationCanceledException)
                {
                    process.Kill(entireProcessTree: true);
                    throw new TimeoutException("The child test run did not finish within 5 minutes.");
                }
            }

            process.ExitCode.Should().Be(0, await stdout + await stderr);

            var kernelNames = kernels.Select(m => $"{m.DeclaringType!.FullName}:{m.Name}").ToHashSet();
            // Keyed by type, name and generic arity: a kernel and the inlined dispatcher in front of it may share a name.
            var meantInlined = typeof(MatMul).Assembly.GetTypes()
                .SelectMany(t => t.GetMethods(Declared))
                .Where(m => m.MethodImplementationFlags.HasFlag(MethodImplAttributes.AggressiveInlining))
                .Select(m => $"{m.DeclaringType!.FullName}:{m.Name}`{(m.IsGenericMethodDefinition ? m.GetGenericArguments().Length : 0)}")
                .ToHashSet();

            var checkedListings = new List<string>();
            var violations = new List<string>();
            foreach (string part in Regex.Split(await File.ReadAllTextAsync(listing), "(?=; Assembly listing for method )"))
            {
                Match head = Regex.Match(part, @"^; Assembly listing for method (?<type>[^:\[]+)(?:\[[^:]*\])?:(?<name>[^\[(]+)(?<rest>.*) \((?<tier>[^)]+)\)\r?$", RegexOptions.Multiline);
                string kernel = $"{head.Groups["type"].Value}:{head.Groups["name"].Value}";
                if (!head.Success || head.Groups["tier"].Value != "FullOpts" || !kernelNames.Contains(kernel)
                    || head.Groups["rest"].Value.Contains("Width128", StringComparison.Ordinal))
                {
                    continue;
                }

                checkedListings.Add(kernel);
                foreach (Match call in Regex.Matches(part, @"call\s+\[(?<type>Qwen3\.Net\.[^:\[]+)(?:\[[^:]*\])?:(?<name>[^\[(\]]+)"))
                {
                    string callee = $"{call.Groups["type"].Value}:{call.Groups["name"].Value}`{GenericArity(part, call.Index + call.Length)}";
                    if (meantInlined.Contains(callee))
                    {
                        violations.Add($"{kernel}{head.Groups["rest"].Value[..Math.Min(80, head.Groups["rest"].Value.Length)]} calls {callee}");
                    }
                }
            }

            // The listings must be there, or the check passes on nothing: the one-token K-format kernel at 512 bits
            // where the CPU has it, at 256 bits otherwise, and the BF16 matrix-vector rows.
            checkedListings.Should().Contain("Qwen3.Net.Kernels.Quantized.QuantizedMatMul:SuperDot");
            checkedListings.Should().Contain("Qwen3.Net.Kernels.MatMul:MatVecRows");
            violations.Should().BeEmpty("a kernel's helpers are inlined into its optimized code:\n" + string.Join('\n', violations.Distinct()));
        }
        finally
        {
            File.Delete(listing);
        }
    }

    /// <summary>The number of type arguments in the "[…]" at <paramref name="at"/> (a method's instantiation), 0 where there is none.</summary>
    private static int GenericArity(string text, int at)
    {
        if (at >= text.Length || text[at] != '[')
        {
            return 0;
        }

        int depth = 0, arguments = 1;
        for (int i = at; i < text.Length; i++)
        {
            switch (text[i])
            {
                case '[': depth++; break;
                case ']' when --depth == 0: return arguments;
                case ',' when depth == 1: arguments++; break;
            }
        }

        throw new FormatException($"Unbalanced instantiation at {at} in the JIT's listing.");
    }

    private static MethodBase[] AggressivelyOptimized() => typeof(MatMul).Assembly.GetTypes()
        .SelectMany(t => t.GetMethods(Declared).Cast<MethodBase>().Concat(t.GetConstructors(Declared)))
        .Where(m => m.MethodImplementationFlags.HasFlag(MethodImplAttributes.AggressiveOptimization))
        .ToArray();
}
