using Qwen3.Net.Benchmarks.Kernels;

// Minimal dispatcher so the kernel benchmarks run on their own; the benchmarks owner's Program.cs replaces this,
// keeping the "kernels" verb.
if (args.Length > 0 && args[0] == "kernels")
{
    KernelBenchmarks.Run(args[1..]);
    return 0;
}

Console.Error.WriteLine("usage: Qwen3.Net.Benchmarks kernels [BenchmarkDotNet arguments, e.g. --filter * --job short]");
return 1;
