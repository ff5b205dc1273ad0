using Qwen3.Net.Server;

namespace Qwen3.Net.Tests.Server;

public sealed class ServerCommandLineTests
{
    [Fact]
    public void DefaultsToPort8000OnLoopbackWithoutAKey()
    {
        var line = ServerCommandLine.Parse([]);
        line.Port.Should().Be(8000);
        line.Host.Should().Be("127.0.0.1");
        line.IsLoopback.Should().BeTrue();
        line.ApiKey.Should().BeNull();
        line.Model.Should().BeNull();
        line.Warmup.Should().BeTrue();
    }

    [Fact]
    public void ReadsEveryOption()
    {
        var line = ServerCommandLine.Parse(["--model", "m", "--port", "0", "--host", "::1", "--api-key", "k", "--threads", "3", "--context", "2048",
            "--max-sequences", "8", "--max-concurrent-requests", "5", "--served-model-name", "qwen", "--refresh-page-cache",
            "--packed-weights", "--no-warmup"]);
        line.Should().Be(new ServerCommandLine
        {
            Model = "m", Port = 0, Host = "::1", ApiKey = "k", Threads = 3, Context = 2048, MaxSequences = 8, MaxConcurrentRequests = 5, ServedModelName = "qwen",
            RefreshPageCache = true, PackedWeights = true, Warmup = false,
        });
        line.IsLoopback.Should().BeTrue();
    }

    [Theory]
    [InlineData("localhost", true)]
    [InlineData("127.0.0.2", true)]
    [InlineData("0.0.0.0", false)]
    [InlineData("::", false)]
    [InlineData("192.168.1.10", false)]
    public void KnowsWhichHostsAreLoopbackOnly(string host, bool loopback) =>
        ServerCommandLine.Parse(["--host", host]).IsLoopback.Should().Be(loopback);

    [Theory]
    [InlineData("--port", "70000")]
    [InlineData("--port", "-1")]
    [InlineData("--threads", "0")]
    [InlineData("--context", "x")]
    [InlineData("--bogus", "1")]
    [InlineData("--model", null)]
    public void RefusesBadOptionsNamingThem(string name, string? value)
    {
        var act = () => ServerCommandLine.Parse(value is null ? [name] : [name, value]);
        act.Should().Throw<ArgumentException>().WithMessage($"*{name}*");
    }
}
