using Qwen3.Net.Server;

namespace Qwen3.Net.Tests.Server;

public sealed class ServerWarmupTests
{
    [Theory]
    [InlineData(false, 0)]
    [InlineData(true, 2)]
    public async Task The_chat_model_runs_a_prompt_and_a_decode_step_before_the_server_listens_unless_told_not_to(bool warmup, long steps)
    {
        string[] arguments = ["--model", Fixtures.TinyModelFolder, "--port", "0", "--threads", "1", .. warmup ? Array.Empty<string>() : ["--no-warmup"]];
        var host = ServerHost.Build(ServerCommandLine.Parse(arguments));
        try
        {
            host.Model!.Scheduler.Steps.Should().Be(steps, "the warm-up is one prompt step and one decode step, run while the host is built");
        }
        finally
        {
            await host.App.DisposeAsync();
            host.Model?.Dispose();
        }
    }
}
