using Qwen3.Net.Fuzz;
using SharpFuzz;

// Usage: dotnet Qwen3.Net.Fuzz.dll TARGET < input
// Under afl-fuzz (fuzz/run.sh) this is a persistent fork server; run by hand it runs the one input from stdin, so a
// crash file reproduces with: dotnet Qwen3.Net.Fuzz.dll TARGET < crash-file
if (args.Length != 1 || !FuzzTargets.Names.Contains(args[0]))
{
    Console.Error.WriteLine($"usage: Qwen3.Net.Fuzz TARGET < input\ntargets: {string.Join(", ", FuzzTargets.Names)}");
    return 2;
}

string target = args[0];
FuzzTargets? targets = null;
var input = new MemoryStream();

// SharpFuzz starts the child that runs inputs with this variable set. A child restarted after a hang loads the
// tokenizer and template before it reports ready, so that load is not timed as part of the next input.
if (Environment.GetEnvironmentVariable("__SHARPFUZZ_CTL") is not null)
{
    // Instrumented code writes coverage to SharpFuzz's trace map, which Run only points at AFL's shared memory later:
    // until then it gets a scratch map.
    unsafe
    {
        SharpFuzz.Common.Trace.SharedMem = (byte*)System.Runtime.InteropServices.NativeMemory.AllocZeroed(1 << 16);
    }

    targets = CreateTargets(target);
}

// SharpFuzz's out-of-process server survives what kills a .NET process (stack overflow, the timeout kill) and restarts
// the child, so hangs and stack overflows are recorded instead of ending the campaign. The targets are made lazily,
// in the child: the server process never runs an input.
Fuzzer.OutOfProcess.Run(stream =>
{
    targets ??= CreateTargets(target);
    input.SetLength(0);
    stream.CopyTo(input);
    Watchdog.Arm();
    targets.Run(target, input.GetBuffer().AsSpan(0, (int)input.Length));
    Watchdog.Disarm();
});
return 0;

static FuzzTargets CreateTargets(string target)
{
    var targets = new FuzzTargets(FindTinyModel(), Path.Combine(WorkRoot(), $"{target}-{Environment.ProcessId}"));
    targets.Warm(target);
    return targets;
}

static string WorkRoot() =>
    Environment.GetEnvironmentVariable("QWEN3NET_FUZZ_WORK") ?? Path.Combine(Path.GetTempPath(), "qwen3net-fuzz");

static string FindTinyModel()
{
    for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
    {
        string candidate = Path.Combine(dir.FullName, "tests", "fixtures", "tiny-qwen3");
        if (Directory.Exists(candidate))
            return candidate;
    }

    throw new DirectoryNotFoundException($"No tests/fixtures/tiny-qwen3 above {AppContext.BaseDirectory}.");
}

/// <summary>
/// Ends the process when one input has used more than a second of CPU: the hang criterion. It is enforced here rather
/// than by afl-fuzz's wall-clock -t, which on a shared, loaded machine would flag slow scheduling as hangs, and whose
/// kill would make the restarted child's start-up count against the next input.
/// </summary>
static class Watchdog
{
    static readonly TimeSpan Limit = TimeSpan.FromSeconds(1);
    static long _armedAt = -1;

    static Thread? _thread;

    public static void Arm()
    {
        EnsureStarted();
        Interlocked.Exchange(ref _armedAt, Environment.CpuUsage.TotalTime.Ticks);
    }

    public static void Disarm() => Interlocked.Exchange(ref _armedAt, -1);

    static void EnsureStarted()
    {
        if (_thread is not null)
            return;
        _thread = new Thread(() =>
        {
            while (true)
            {
                Thread.Sleep(50);
                long armedAt = Interlocked.Read(ref _armedAt);
                if (armedAt >= 0 && Environment.CpuUsage.TotalTime.Ticks - armedAt > Limit.Ticks)
                    Environment.FailFast($"hang: one input used more than {Limit.TotalSeconds} s of CPU");
            }
        }) { IsBackground = true, Name = "fuzz watchdog" };
        _thread.Start();
    }
}
