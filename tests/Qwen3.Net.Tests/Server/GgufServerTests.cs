using System.Text.Json;
using Qwen3.Net.Loading.Gguf;
using Qwen3.Net.Server;
using Qwen3.Net.Tests.Loading;

namespace Qwen3.Net.Tests.Server;

public sealed class GgufServerTests
{
    [Fact]
    public async Task A_gguf_file_is_served_under_its_file_name_with_its_modification_time()
    {
        using var temp = new TempFolder();
        string path = temp.File("tiny-qwen3-BF16.gguf");
        Qwen3GgufExport.ConvertFolder(Fixtures.TinyModelFolder, path, "tiny-qwen3");
        var written = new DateTimeOffset(File.GetLastWriteTimeUtc(path)).ToUnixTimeSeconds();
        await using var server = await LibraryServer.StartAsync(new Qwen3ModelOptions { ThreadCount = 2 }, new Qwen3ServerOptions(), path);

        using var http = new HttpClient();
        using var models = JsonDocument.Parse(await http.GetStringAsync(new Uri(server.BaseUri, "v1/models")));
        var model = models.RootElement.GetProperty("data").EnumerateArray().Single();
        model.GetProperty("id").GetString().Should().Be("tiny-qwen3-BF16");
        model.GetProperty("created").GetInt64().Should().Be(written);
    }
}
