using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace Qwen3.Net.Benchmarks.Server;

/// <summary>
/// An HTTP server in a child process on loopback: ours (this executable's <c>server-host</c> command, which runs the
/// server executable's host) or native <c>llama-server</c>. Its memory and threads are its own, so they can be tracked.
/// </summary>
internal sealed partial class ServerChild : IDisposable
{
    private readonly Process _process;
    private int _outputLines;

    private ServerChild(Process process, Uri baseUri)
    {
        _process = process;
        BaseUri = baseUri;
    }

    public Uri BaseUri { get; }

    /// <summary>The last lines llama-server wrote (empty for ours).</summary>
    public IReadOnlyCollection<string> LogTail { get; private init; } = [];

    /// <summary>Lines the server has written (ours logs one per request).</summary>
    public int OutputLines => Volatile.Read(ref _outputLines);

    /// <summary>Starts Qwen3.Net's server with <paramref name="serverArgs"/> (its command line, without --port) and waits until it listens.</summary>
    public static async Task<ServerChild> StartQwen3Async(IEnumerable<string> serverArgs)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet")
        {
            start.ArgumentList.Add(typeof(ServerChild).Assembly.Location);
        }

        foreach (string arg in new[] { "server-host", "--port", "0" }.Concat(serverArgs))
        {
            start.ArgumentList.Add(arg);
        }

        var listening = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        var process = new Process { StartInfo = start };
        ServerChild? child = null;
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                listening.TrySetException(new InvalidOperationException("The server exited before it listened."));
                return;
            }

            if (child is not null)
            {
                Interlocked.Increment(ref child._outputLines);
            }

            if (ListeningLine().Match(e.Data) is { Success: true } match)
            {
                listening.TrySetResult(new Uri(match.Groups[1].Value));
            }
        };
        process.ErrorDataReceived += (_, _) => { };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            var uri = await listening.Task.WaitAsync(TimeSpan.FromMinutes(5)).ConfigureAwait(false);
            child = new ServerChild(process, uri);
            return child;
        }
        catch
        {
            Kill(process);
            throw;
        }
    }

    /// <summary>Starts native llama-server on a free loopback port and waits until its /health says it is ready.</summary>
    public static async Task<ServerChild> StartLlamaAsync(string bin, string gguf, int parallel, int threads, int context)
    {
        int port = FreePort();
        var start = new ProcessStartInfo(Path.Combine(bin, "llama-server")) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in new[]
        {
            "-m", gguf, "--host", "127.0.0.1", "--port", port.ToString(CultureInfo.InvariantCulture), "--parallel", parallel.ToString(CultureInfo.InvariantCulture),
            "-cb", "-t", threads.ToString(CultureInfo.InvariantCulture), "-c", context.ToString(CultureInfo.InvariantCulture),
        })
        {
            start.ArgumentList.Add(arg);
        }

        var process = new Process { StartInfo = start };
        // Its log's last lines are kept, so a crash can be reported with its cause.
        var log = new System.Collections.Concurrent.ConcurrentQueue<string>();
        void Keep(string? line)
        {
            if (line is not null)
            {
                log.Enqueue(line);
                while (log.Count > 40 && log.TryDequeue(out _))
                {
                }
            }
        }

        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var child = new ServerChild(process, new Uri($"http://127.0.0.1:{port}/")) { LogTail = log };
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromMinutes(5))
        {
            if (process.HasExited)
            {
                break;
            }

            try
            {
                using var response = await http.GetAsync(new Uri(child.BaseUri, "health")).ConfigureAwait(false);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return child;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            catch (TaskCanceledException)
            {
                // Loading the model.
            }

            await Task.Delay(250).ConfigureAwait(false);
        }

        child.Dispose();
        throw new InvalidOperationException($"llama-server did not become ready (exit code {(process.HasExited ? process.ExitCode : null)}).");
    }

    /// <summary>The child's resident memory and thread count, from /proc (Linux).</summary>
    public (long RssBytes, int Threads) Sample()
    {
        long rss = 0;
        int threads = 0;
        foreach (string line in File.ReadLines($"/proc/{_process.Id}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                rss = long.Parse(line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
            }
            else if (line.StartsWith("Threads:", StringComparison.Ordinal))
            {
                threads = int.Parse(line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
            }
        }

        return (rss, threads);
    }

    public bool HasExited => _process.HasExited;

    public void Dispose()
    {
        Kill(_process);
        _process.Dispose();
    }

    private static void Kill(Process process)
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    [GeneratedRegex(@"Now listening on: (http://\S+)")]
    private static partial Regex ListeningLine();
}
