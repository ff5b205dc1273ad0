using System.Security.Cryptography;
using Qwen3.Net.Hub;
using Qwen3.Net.Tests.Loading;
using Qwen3.Net.Tests.Model;

namespace Qwen3.Net.Tests.Hub;

/// <summary>Downloads from a loopback fake hub into a temporary huggingface_hub cache; nothing leaves the machine.</summary>
public sealed class HubDownloadTests : IAsyncLifetime
{
    private const string Repo = "Qwen/Tiny-Qwen3";
    private readonly TempFolder _cache = new();
    private FakeHub _hub = null!;
    private FakeRepository _tiny = null!;

    public async Task InitializeAsync()
    {
        _hub = await FakeHub.StartAsync();
        var files = Directory.EnumerateFiles(Fixtures.TinyModelFolder)
            .ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);

        // Files a real repository has that the model does not need: they must not be downloaded.
        files["README.md"] = "# Tiny"u8.ToArray();
        files["original/consolidated.pth"] = new byte[200_000];
        _tiny = _hub.Add(Repo, files);
    }

    public async Task DisposeAsync()
    {
        await _hub.DisposeAsync();
        _cache.Dispose();
    }

    private HubOptions Options(string? token = null) => new()
    {
        Endpoint = _hub.Endpoint,
        CacheDirectory = _cache.Path,
        Token = token ?? "",
        Offline = false,
        RetryBaseDelay = TimeSpan.FromMilliseconds(10),
    };

    private string RepoFolder => Path.Combine(_cache.Path, "models--Qwen--Tiny-Qwen3");

    [LinuxFact("snapshot files are symbolic links where Windows would copy")]
    public async Task A_fresh_download_lays_out_the_huggingface_cache_then_a_second_load_makes_no_request()
    {
        var reports = new List<DownloadProgress>();
        using (var model = await Qwen3Model.LoadAsync(Repo, new Qwen3ModelOptions { Hub = Options(), ThreadCount = 1 }, new SyncProgress(reports.Add)))
        {
            model.Folder.Should().Be(Path.Combine(RepoFolder, "snapshots", _tiny.Commit));
            using var context = model.CreateContext(16);
            context.Evaluate(model.Tokenizer.Encode("Hello").ToArray()).Length.Should().Be(model.Config.VocabSize);
        }

        File.ReadAllText(Path.Combine(RepoFolder, "refs", "main")).Should().Be(_tiny.Commit);
        string[] needed = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"];
        foreach (string file in needed)
        {
            var link = new FileInfo(Path.Combine(RepoFolder, "snapshots", _tiny.Commit, file));
            link.LinkTarget.Should().Be($"../../blobs/{_tiny.ETag(file)}", file);
            File.ReadAllBytes(link.FullName).Should().Equal(_tiny.Files[file], file);
        }

        Directory.GetFiles(Path.Combine(RepoFolder, "blobs")).Select(Path.GetFileName).Should().BeEquivalentTo(needed.Select(_tiny.ETag));
        _hub.Requests.Should().NotContain(r => r.Path.Contains("README") || r.Path.Contains("original"));
        _hub.Requests.Where(r => r.Path.StartsWith("/cdn/")).Should().HaveCount(2, "the weights and tokenizer.json are LFS files, fetched once each");
        long total = needed.Sum(f => (long)_tiny.Files[f].Length);
        reports.Should().NotBeEmpty();
        reports[^1].TotalBytes.Should().Be(total);
        reports.Max(r => r.Bytes).Should().Be(total);

        int before = _hub.Requests.Count;
        using (var again = Qwen3Model.Load(Repo, new Qwen3ModelOptions { Hub = Options(), ThreadCount = 1 }))
        {
            again.Config.VocabSize.Should().BeGreaterThan(0);
        }

        _hub.Requests.Count.Should().Be(before, "a complete cached snapshot loads without asking the hub");
    }

    [Fact]
    public async Task Shards_are_downloaded_in_parallel_and_the_model_loads_from_them()
    {
        using var variant = TinyModelVariant.Create(shards: 3);
        var repo = _hub.AddFolder("Qwen/Tiny-Sharded", variant.Path);
        _hub.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var download = HuggingFaceHub.DownloadAsync("Qwen/Tiny-Sharded", Options());

        // All three shard bodies are held back until all three requests are in flight together.
        var shards = repo.Files.Keys.Where(f => f.StartsWith("model-")).Select(f => "/cdn/" + repo.ETag(f)).ToList();
        shards.Should().HaveCount(3);
        await WaitUntilAsync(() => _hub.Requests.Count(r => shards.Contains(r.Path)) == 3, download);
        _hub.Gate.SetResult();
        string folder = await download;

        folder.Should().Be(Path.Combine(_cache.Path, "models--Qwen--Tiny-Sharded", "snapshots", repo.Commit));
        Directory.GetFiles(folder, "model-*.safetensors").Should().HaveCount(3);
        using var model = Qwen3Model.Load(folder, new Qwen3ModelOptions { ThreadCount = 1 });
        model.Config.NumHiddenLayers.Should().BeGreaterThan(0);
    }

    [Fact]
    public async Task A_download_cut_in_the_middle_resumes_from_the_incomplete_file_with_a_range_request()
    {
        _hub.CutOnce("model.safetensors", 1_000_000);
        var failed = async () => await HuggingFaceHub.DownloadAsync(Repo, Options() with { MaxRetries = 0 });
        (await failed.Should().ThrowAsync<HubException>()).Which.Kind.Should().Be(HubErrorKind.Network);
        string partial = Path.Combine(RepoFolder, "blobs", _tiny.ETag("model.safetensors") + ".incomplete");
        long kept = new FileInfo(partial).Length;
        kept.Should().BeInRange(1, 1_000_000);

        string folder = await HuggingFaceHub.DownloadAsync(Repo, Options());

        var gets = _hub.Requests.Where(r => r.Path == "/cdn/" + _tiny.ETag("model.safetensors")).ToList();
        gets.Should().HaveCount(2);
        gets[1].Range.Should().Be($"bytes={kept}-");
        gets[1].BytesSent.Should().Be(_tiny.Files["model.safetensors"].Length - kept, "only the rest is fetched");
        File.ReadAllBytes(Path.Combine(folder, "model.safetensors")).Should().Equal(_tiny.Files["model.safetensors"]);
        File.Exists(partial).Should().BeFalse();
    }

    [Fact]
    public async Task A_connection_cut_is_retried_within_the_same_call()
    {
        _hub.CutOnce("model.safetensors", 500_000);
        string folder = await HuggingFaceHub.DownloadAsync(Repo, Options());

        var gets = _hub.Requests.Where(r => r.Path == "/cdn/" + _tiny.ETag("model.safetensors")).ToList();
        gets.Should().HaveCount(2);
        gets[1].Range.Should().StartWith("bytes=");
        File.ReadAllBytes(Path.Combine(folder, "model.safetensors")).Should().Equal(_tiny.Files["model.safetensors"]);
    }

    [Theory]
    [InlineData("model.safetensors", "SHA-256")]
    [InlineData("config.json", "git SHA-1")]
    public async Task A_corrupted_byte_is_detected_and_the_file_removed(string file, string hashName)
    {
        _hub.Corrupt(file, 100);
        var download = async () => await HuggingFaceHub.DownloadAsync(Repo, Options());

        var error = (await download.Should().ThrowAsync<HubException>()).Which;
        error.Kind.Should().Be(HubErrorKind.HashMismatch, error.Message);
        error.FileName.Should().Be(file);
        error.Message.Should().Contain(file).And.Contain(hashName).And.Contain(_tiny.ETag(file)).And.Contain("removed");
        string blob = Path.Combine(RepoFolder, "blobs", _tiny.ETag(file));
        File.Exists(blob).Should().BeFalse();
        File.Exists(blob + ".incomplete").Should().BeFalse();
        File.Exists(Path.Combine(RepoFolder, "snapshots", _tiny.Commit, file)).Should().BeFalse();
    }

    [Fact]
    public async Task Two_concurrent_downloads_of_one_model_share_the_lock_and_fetch_each_file_once()
    {
        _hub.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var first = HuggingFaceHub.DownloadAsync(Repo, Options());
        var second = HuggingFaceHub.DownloadAsync(Repo, Options());

        // Both have asked for the weights' metadata, and one holds the lock with its body held back.
        await WaitUntilAsync(() => _hub.Requests.Count(r => r.Method == "HEAD" && r.Path.EndsWith("model.safetensors")) == 2 && _hub.Requests.Any(r => r.Path == "/cdn/" + _tiny.ETag("model.safetensors")), Task.WhenAny(first, second));
        _hub.Gate.SetResult();
        string[] folders = await Task.WhenAll(first, second);

        folders[0].Should().Be(folders[1]);
        _hub.Requests.Count(r => r.Path == "/cdn/" + _tiny.ETag("model.safetensors")).Should().Be(1, "the second download waits for the lock, then finds the blob");
        File.ReadAllBytes(Path.Combine(folders[0], "model.safetensors")).Should().Equal(_tiny.Files["model.safetensors"]);
        Directory.GetFiles(Path.Combine(RepoFolder, "blobs"), "*.incomplete").Should().BeEmpty();
    }

    [LinuxFact("the test makes symbolic links, which Windows allows only in developer mode")]
    public async Task A_cache_laid_out_by_huggingface_hub_is_used_as_is_online_and_offline()
    {
        // What huggingface_hub 0.3x writes: blobs named by ETag, relative links in snapshots, the commit in refs/main
        // without a newline, and a .no_exist folder for files it found missing.
        string commit = new('a', 40);
        string[] files = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"];
        Directory.CreateDirectory(Path.Combine(RepoFolder, "blobs"));
        Directory.CreateDirectory(Path.Combine(RepoFolder, "refs"));
        Directory.CreateDirectory(Path.Combine(RepoFolder, "snapshots", commit));
        Directory.CreateDirectory(Path.Combine(RepoFolder, ".no_exist", commit));
        File.WriteAllBytes(Path.Combine(RepoFolder, ".no_exist", commit, "added_tokens.json"), []);
        File.WriteAllText(Path.Combine(RepoFolder, "refs", "main"), commit);
        foreach (string file in files)
        {
            File.Copy(Path.Combine(Fixtures.TinyModelFolder, file), Path.Combine(RepoFolder, "blobs", _tiny.ETag(file)));
            File.CreateSymbolicLink(Path.Combine(RepoFolder, "snapshots", commit, file), $"../../blobs/{_tiny.ETag(file)}");
        }

        string expected = Path.Combine(RepoFolder, "snapshots", commit);
        (await HuggingFaceHub.DownloadAsync(Repo, Options())).Should().Be(expected);
        (await HuggingFaceHub.DownloadAsync($"{Repo}@{commit}", Options())).Should().Be(expected);
        (await HuggingFaceHub.DownloadAsync(Repo, Options() with { Offline = true, Endpoint = "http://127.0.0.1:9" })).Should().Be(expected);
        _hub.Requests.Should().BeEmpty();

        using var model = await Qwen3Model.LoadAsync(Repo, new Qwen3ModelOptions { Hub = Options() with { Offline = true }, ThreadCount = 1 });
        model.Folder.Should().Be(expected);
    }

    [Fact]
    public async Task Offline_with_nothing_cached_says_so()
    {
        var download = async () => await HuggingFaceHub.DownloadAsync(Repo, Options() with { Offline = true });

        var error = (await download.Should().ThrowAsync<HubException>()).Which;
        error.Kind.Should().Be(HubErrorKind.NotCached);
        error.Message.Should().Contain("offline").And.Contain("HF_HUB_OFFLINE").And.Contain(RepoFolder);
        _hub.Requests.Should().BeEmpty();
    }

    [Fact]
    public async Task An_unreachable_hub_with_nothing_cached_says_so()
    {
        var download = async () => await HuggingFaceHub.DownloadAsync(Repo, Options() with { Endpoint = "http://127.0.0.1:9", MaxRetries = 1 });

        var error = (await download.Should().ThrowAsync<HubException>()).Which;
        error.Kind.Should().Be(HubErrorKind.NotCached);
        error.Message.Should().Contain("Cannot reach the hub at http://127.0.0.1:9").And.Contain("not in the cache");
    }

    [Fact]
    public async Task An_unknown_repository_is_a_404_naming_it()
    {
        var download = async () => await HuggingFaceHub.DownloadAsync("Qwen/No-Such-Model", Options());

        var error = (await download.Should().ThrowAsync<HubException>()).Which;
        error.Kind.Should().Be(HubErrorKind.RepositoryNotFound);
        error.StatusCode.Should().Be(404);
        error.Message.Should().Contain("'Qwen/No-Such-Model' was not found");
    }

    [Fact]
    public async Task An_unknown_revision_is_named()
    {
        var download = async () => await HuggingFaceHub.DownloadAsync(Repo + "@no-such-branch", Options());

        var error = (await download.Should().ThrowAsync<HubException>()).Which;
        error.Kind.Should().Be(HubErrorKind.RevisionNotFound);
        error.Message.Should().Contain("no revision 'no-such-branch'");
    }

    [Fact]
    public async Task A_gated_repository_without_a_token_says_how_to_get_access()
    {
        _tiny.Gated = true;
        _tiny.AcceptedToken = "hf_good";
        var download = async () => await HuggingFaceHub.DownloadAsync(Repo, Options());

        var error = (await download.Should().ThrowAsync<HubException>()).Which;
        error.Kind.Should().Be(HubErrorKind.AccessDenied);
        error.StatusCode.Should().Be(401);
        error.Message.Should().Contain("gated").And.Contain($"{_hub.Endpoint}/{Repo}").And.Contain("accept its conditions").And.Contain("HF_TOKEN");
    }

    [Fact]
    public async Task A_gated_repository_with_a_token_lacking_access_is_a_403_and_with_access_downloads()
    {
        _tiny.Gated = true;
        _tiny.AcceptedToken = "hf_good";
        var refused = async () => await HuggingFaceHub.DownloadAsync(Repo, Options(token: "hf_other"));
        var error = (await refused.Should().ThrowAsync<HubException>()).Which;
        error.Kind.Should().Be(HubErrorKind.AccessDenied);
        error.StatusCode.Should().Be(403);
        error.Message.Should().Contain("token in use has no access");

        await HuggingFaceHub.DownloadAsync(Repo, Options(token: "hf_good"));
        _hub.Requests.Where(r => !r.Path.StartsWith("/cdn/")).Should().OnlyContain(r => r.Authorization.StartsWith("Bearer "));
    }

    [Fact]
    public async Task Not_enough_disk_space_is_refused_before_any_download()
    {
        var download = async () => await HuggingFaceHub.DownloadAsync(Repo, Options() with { AvailableDiskSpace = 1_000_000 });

        var error = (await download.Should().ThrowAsync<HubException>()).Which;
        error.Kind.Should().Be(HubErrorKind.InsufficientDiskSpace);
        error.Message.Should().Contain("free").And.Contain("nothing was downloaded");
        _hub.Requests.Should().NotContain(r => r.Method == "GET" && r.Path.Contains("/resolve/"));
        _hub.Requests.Should().NotContain(r => r.Path.StartsWith("/cdn/"));
    }

    [Fact]
    public async Task A_gguf_repository_fetches_only_the_file_picked_by_quantization_or_name()
    {
        var files = new Dictionary<string, byte[]>
        {
            ["Qwen3-Tiny-Q4_K_M.gguf"] = RandomBytes(30_000, 1),
            ["Qwen3-Tiny-Q8_0.gguf"] = RandomBytes(40_000, 2),
            ["README.md"] = "# GGUF"u8.ToArray(),
        };
        var repo = _hub.Add("Qwen/Tiny-GGUF", files);

        string path = await HuggingFaceHub.DownloadAsync("Qwen/Tiny-GGUF:q8_0", Options());
        path.Should().Be(Path.Combine(_cache.Path, "models--Qwen--Tiny-GGUF", "snapshots", repo.Commit, "Qwen3-Tiny-Q8_0.gguf"));
        File.ReadAllBytes(path).Should().Equal(files["Qwen3-Tiny-Q8_0.gguf"]);
        _hub.Requests.Should().NotContain(r => r.Path.Contains("Q4_K_M"));

        (await HuggingFaceHub.DownloadAsync("Qwen/Tiny-GGUF:Qwen3-Tiny-Q4_K_M.gguf", Options())).Should().EndWith("Qwen3-Tiny-Q4_K_M.gguf");

        var missing = async () => await HuggingFaceHub.DownloadAsync("Qwen/Tiny-GGUF:Q5_K_M", Options());
        (await missing.Should().ThrowAsync<HubException>()).Which.Message.Should().Contain("'Q5_K_M' matches no GGUF file").And.Contain("Qwen3-Tiny-Q8_0.gguf");
        var ambiguous = async () => await HuggingFaceHub.DownloadAsync("Qwen/Tiny-GGUF", Options());
        (await ambiguous.Should().ThrowAsync<HubException>()).Which.Message.Should().Contain("several GGUF files").And.Contain(":Q4_K_M");
    }

    [Fact]
    public async Task A_gguf_picked_by_quantization_loads_and_runs()
    {
        string gguf = _cache.File("tiny.gguf");
        Qwen3.Net.Loading.Gguf.Qwen3GgufExport.ConvertFolder(Fixtures.TinyModelFolder, gguf, "tiny-qwen3");
        _hub.Add("Qwen/Tiny-Qwen3-GGUF", new Dictionary<string, byte[]> { ["Tiny-Qwen3-BF16.gguf"] = File.ReadAllBytes(gguf), ["README.md"] = "# GGUF"u8.ToArray() });

        using var model = await Qwen3Model.LoadAsync("Qwen/Tiny-Qwen3-GGUF:BF16", new Qwen3ModelOptions { Hub = Options(), ThreadCount = 1 });

        model.Folder.Should().EndWith("Tiny-Qwen3-BF16.gguf");
        using var context = model.CreateContext(16);
        context.Evaluate(model.Tokenizer.Encode("Hello").ToArray()).Length.Should().Be(model.Config.VocabSize);
    }

    [Fact]
    public async Task A_repository_without_weights_is_named()
    {
        _hub.Add("Qwen/No-Weights", new Dictionary<string, byte[]> { ["config.json"] = "{}"u8.ToArray(), ["tokenizer.json"] = "{}"u8.ToArray() });
        var download = async () => await HuggingFaceHub.DownloadAsync("Qwen/No-Weights", Options());

        var error = (await download.Should().ThrowAsync<HubException>()).Which;
        error.Kind.Should().Be(HubErrorKind.FileNotFound);
        error.Message.Should().Contain("neither model.safetensors nor model.safetensors.index.json");
    }

    [Fact]
    public async Task An_index_naming_a_path_outside_the_snapshot_is_refused()
    {
        _hub.Add("Qwen/Evil", new Dictionary<string, byte[]>
        {
            ["config.json"] = "{}"u8.ToArray(),
            ["tokenizer.json"] = "{}"u8.ToArray(),
            ["model.safetensors.index.json"] = """{"weight_map": {"a": "../../../../escape.safetensors"}}"""u8.ToArray(),
            ["../escape.safetensors"] = [1, 2, 3],
        });
        var download = async () => await HuggingFaceHub.DownloadAsync("Qwen/Evil", Options());

        var error = (await download.Should().ThrowAsync<HubException>()).Which;
        error.Kind.Should().Be(HubErrorKind.InvalidResponse);
        error.Message.Should().Contain("not a plain relative path");
        Directory.EnumerateFiles(_cache.Path, "escape*", SearchOption.AllDirectories).Should().BeEmpty();
    }

    [Theory]
    [InlineData("Qwen/Qwen3-1.7B", "Qwen/Qwen3-1.7B", "main", null)]
    [InlineData("Qwen/Qwen3-1.7B@v1.0", "Qwen/Qwen3-1.7B", "v1.0", null)]
    [InlineData("Qwen/Qwen3-1.7B-GGUF:Q4_K_M", "Qwen/Qwen3-1.7B-GGUF", "main", "Q4_K_M")]
    [InlineData("Qwen/Qwen3-1.7B-GGUF@refs/pr/1:Qwen3-1.7B-Q8_0.gguf", "Qwen/Qwen3-1.7B-GGUF", "refs/pr/1", "Qwen3-1.7B-Q8_0.gguf")]
    public void Model_ids_are_read(string text, string repository, string revision, string? selector)
    {
        HubModelId.TryParse(text, out var id).Should().BeTrue();
        (id.Repository, id.Revision, id.FileSelector).Should().Be((repository, revision, selector));
    }

    [Theory]
    [InlineData("models")]
    [InlineData("/abs/Qwen3")]
    [InlineData("./Qwen/Qwen3")]
    [InlineData("a/b/c")]
    [InlineData("Qwen/Qwen3@../../etc")]
    [InlineData("Qwen/Qwen3:../x.gguf")]
    [InlineData("Qwen/a--b")]
    [InlineData("C:\\models\\x")]
    public void Paths_and_unsafe_ids_are_not_model_ids(string text) =>
        HubModelId.TryParse(text, out _).Should().BeFalse();

    private static byte[] RandomBytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>Polls a condition, failing if <paramref name="work"/> ends first (with its exception) or 30 s pass.</summary>
    private static async Task WaitUntilAsync(Func<bool> condition, Task work)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (!condition())
        {
            if (work.IsCompleted)
            {
                await work;
                throw new InvalidOperationException("The download ended before the awaited state.");
            }

            await Task.Delay(10, timeout.Token);
        }
    }

    /// <summary>Reports on the caller's thread (Progress&lt;T&gt; posts to the thread pool, which races the assertions).</summary>
    private sealed class SyncProgress(Action<DownloadProgress> report) : IProgress<DownloadProgress>
    {
        private readonly Lock _lock = new();

        public void Report(DownloadProgress value)
        {
            lock (_lock)
            {
                report(value);
            }
        }
    }
}
