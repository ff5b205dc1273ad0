using System.Diagnostics;
using Qwen3.Chat;
using Qwen3.Net.Hub;
using Qwen3.Net.Tests.Loading;

namespace Qwen3.Net.Tests.Hub;

/// <summary>The qwen3 tool's download command against the loopback fake hub: in process, and as two processes at once.</summary>
public sealed class ToolDownloadTests : IAsyncLifetime
{
    private const string Repo = "Qwen/Tiny-Qwen3";
    private readonly TempFolder _home = new();
    private FakeHub _hub = null!;
    private FakeRepository _tiny = null!;

    public async Task InitializeAsync()
    {
        _hub = await FakeHub.StartAsync();
        _tiny = _hub.AddFolder(Repo, Fixtures.TinyModelFolder);
    }

    public async Task DisposeAsync()
    {
        await _hub.DisposeAsync();
        _home.Dispose();
    }

    private string Cache => Path.Combine(_home.Path, "hub");

    [Fact]
    public async Task Download_prints_the_snapshot_folder_and_a_progress_line_per_tenth()
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var hub = new HubOptions { Endpoint = _hub.Endpoint, CacheDirectory = Cache, Token = "", Offline = false };

        int code = await ToolCommands.DownloadAsync([Repo], output, error, interactive: false, hub);

        code.Should().Be(0, error.ToString());
        output.ToString().Trim().Should().Be(Path.Combine(Cache, "models--Qwen--Tiny-Qwen3", "snapshots", _tiny.Commit));
        error.ToString().Should().MatchRegex(@"\[#{30}\] 100% \d+\.\d MiB / \d+\.\d MiB .* done");
    }

    [Fact]
    public async Task Download_of_an_unknown_repository_prints_the_hub_error()
    {
        var error = new StringWriter();
        var hub = new HubOptions { Endpoint = _hub.Endpoint, CacheDirectory = Cache, Token = "", Offline = false };

        int code = await ToolCommands.DownloadAsync(["Qwen/Nope"], new StringWriter(), error, interactive: false, hub);

        code.Should().Be(1);
        error.ToString().Should().Contain("'Qwen/Nope' was not found");
    }

    [Fact]
    public void The_progress_line_shows_sizes_speed_and_time_left()
    {
        var bar = new DownloadProgressBar(new StringWriter(), interactive: true);
        bar.Report(new DownloadProgress("model.safetensors", 0, 3L << 30, 0, 4L << 30));

        string line = bar.Line(new DownloadProgress("model.safetensors", 1L << 30, 3L << 30, 1L << 30, 4L << 30));

        line.Should().MatchRegex(@"^\[#{8}\.{22}\]  25% 1\.00 GiB / 4\.00 GiB  .+/s  (\d\d:\d\d:\d\d|--:--:--) left  model\.safetensors$");
    }

    [Fact]
    public async Task Two_tool_processes_downloading_one_model_fetch_the_weights_once()
    {
        _hub.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var first = StartTool("download", Repo);
        using var second = StartTool("download", Repo);
        try
        {
            await BothDownloadOnceAsync(first, second);
        }
        finally
        {
            // A failed assertion must not leave the processes waiting on the fake hub.
            foreach (var process in new[] { first, second }.Where(p => !p.HasExited))
            {
                process.Kill(entireProcessTree: true);
            }
        }
    }

    private async Task BothDownloadOnceAsync(Process first, Process second)
    {
        var outputs = new[] { first, second }.Select(p => (Out: p.StandardOutput.ReadToEndAsync(), Err: p.StandardError.ReadToEndAsync())).ToArray();
        string weights = "/cdn/" + _tiny.ETag("model.safetensors");

        // Both processes have asked for the weights' metadata and one is downloading them (its body held back).
        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
        {
            while (!(_hub.Requests.Count(r => r.Method == "HEAD" && r.Path.EndsWith("/model.safetensors")) == 2 && _hub.Requests.Any(r => r.Path == weights)))
            {
                if (first.HasExited || second.HasExited)
                {
                    throw new InvalidOperationException("A download ended before both were in flight: " + (first.HasExited ? await outputs[0].Err : await outputs[1].Err));
                }

                await Task.Delay(20, timeout.Token);
            }
        }

        _hub.Gate!.SetResult();
        using var exit = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await Task.WhenAll(first.WaitForExitAsync(exit.Token), second.WaitForExitAsync(exit.Token));

        first.ExitCode.Should().Be(0, await outputs[0].Err);
        second.ExitCode.Should().Be(0, await outputs[1].Err);
        string folder = Path.Combine(Cache, "models--Qwen--Tiny-Qwen3", "snapshots", _tiny.Commit);
        (await outputs[0].Out).Trim().Should().Be(folder);
        (await outputs[1].Out).Trim().Should().Be(folder);
        _hub.Requests.Count(r => r.Path == weights).Should().Be(1, "the second process waits on the lock file, then finds the blob");
        File.ReadAllBytes(Path.Combine(folder, "model.safetensors")).Should().Equal(_tiny.Files["model.safetensors"]);
    }

    /// <summary>Runs the tool's built assembly (copied beside the tests) with the environment pointing at the fake hub.</summary>
    private Process StartTool(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Qwen3.Chat.dll"));
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["HF_ENDPOINT"] = _hub.Endpoint;
        start.Environment["HF_HOME"] = _home.Path;
        start.Environment.Remove("HF_HUB_CACHE");
        start.Environment.Remove("HF_TOKEN");
        start.Environment.Remove("HF_HUB_OFFLINE");
        return Process.Start(start)!;
    }
}
