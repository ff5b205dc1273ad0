using Qwen3.Net.Server;

namespace Qwen3.Net.Tests.Server;

public sealed class ServerWarmupTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Every_model_runs_its_first_passes_before_the_server_listens_unless_told_not_to(bool warmup)
    {
        string[] arguments =
        [
            "--model", Fixtures.TinyModelFolder, "--embedding-model", Fixtures.TinyModelFolder, "--reranker-model", Fixtures.TinyModelFolder,
            "--port", "0", "--threads", "1", .. warmup ? Array.Empty<string>() : ["--no-warmup"],
        ];
        var host = ServerHost.Build(ServerCommandLine.Parse(arguments));
        var models = ServedModels.Of(host.App)!.Models;
        try
        {
            var steps = models.ToDictionary(m => m.Kind, m => m.Model.Scheduler.Steps);
            // The chat model runs a prompt step and a decode step; the retrieval models one step each.
            steps.Should().Equal(new Dictionary<ModelKind, long>
            {
                [ModelKind.Chat] = warmup ? 2 : 0,
                [ModelKind.Embeddings] = warmup ? 1 : 0,
                [ModelKind.Rerank] = warmup ? 1 : 0,
            });
        }
        finally
        {
            await host.App.DisposeAsync();
            // The app never started, so its stop does not dispose the retrieval models (a second Dispose does nothing).
            foreach (var served in models)
            {
                served.Model.Dispose();
            }
        }
    }
}
