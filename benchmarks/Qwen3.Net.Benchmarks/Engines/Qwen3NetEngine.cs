namespace Qwen3.Net.Benchmarks.Engines;

/// <summary>Our library through its public API, as an application would use it.</summary>
public sealed class Qwen3NetEngine : IInferenceEngine
{
    private readonly Qwen3Model _model;
    private readonly InferenceContext _context;
    private readonly int _threads;

    public Qwen3NetEngine(string modelFolder, int threads, int contextSize)
    {
        _threads = threads;
        _model = Qwen3Model.Load(modelFolder, new Qwen3ModelOptions { ThreadCount = threads });
        try
        {
            _context = _model.CreateContext(contextSize);
        }
        catch
        {
            _model.Dispose();
            throw;
        }
    }

    public string Description =>
        $"Qwen3.Net {typeof(Qwen3Model).Assembly.GetName().Version}, {_threads} thread(s), .NET {Environment.Version}";

    public ReadOnlySpan<float> Evaluate(ReadOnlySpan<int> tokens) => _context.Evaluate(tokens);

    public void Reset() => _context.Truncate(0);

    public void Dispose()
    {
        _context.Dispose();
        _model.Dispose();
    }
}
