using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Vae.ML.Data;
using Vae.ML.Torch;

namespace Vae.ML;

/// <summary>
/// A trained variational autoencoder. As an <see cref="ITransformer"/> it adds four columns to any data with the feature
/// column: the latent mean μ, the latent log-variance log σ², the reconstruction decoder(μ), and the per-row loss
/// BCE + β·KL at z = μ (an anomaly score). It also encodes, decodes and samples plain float arrays.
/// Dispose it to release the network's native memory.
/// </summary>
public sealed partial class VaeTransformer : ITransformer, IDisposable
{
    private readonly IHostEnvironment _env;
    private readonly VaeModel _model;
    private readonly ColumnNames _columns;
    private readonly VaeEpochMetrics[] _history;

    internal VaeTransformer(IHostEnvironment env, VaeModel model, ColumnNames columns, double beta, IReadOnlyList<VaeEpochMetrics> history)
    {
        _env = env;
        _model = model;
        // Every caller has checked the names already, with the option or the file to blame (VaeTrainer.CheckOptions,
        // the model-file readers, ImportSafetensors).
        _columns = columns;
        Beta = beta;
        _history = history.ToArray();
    }

    /// <summary>Values per input row (the feature vector's size), e.g. 784 for MNIST.</summary>
    public int InputSize => _model.InputSize;

    /// <summary>Size of the latent space.</summary>
    public int LatentDimension => _model.LatentDimension;

    /// <summary>Hidden layer widths of the encoder (the decoder mirrors them).</summary>
    public IReadOnlyList<int> HiddenSizes => _model.Architecture.HiddenSizes;

    /// <summary>The decoder's distribution: what Reconstruction, Decode, Sample and Score mean (see <see cref="VaeLikelihood"/>).</summary>
    public VaeLikelihood Likelihood => _model.Likelihood;

    /// <summary>
    /// Gaussian models: the per-feature mean and standard deviation the features are standardized with (mean 0 and
    /// std 1 when the trainer did not standardize); null for Bernoulli models. For exporters.
    /// </summary>
    internal (float[] Mean, float[] Std)? Standardization => _model.Standardization is { } s ? ((float[])s.Mean.Clone(), (float[])s.Std.Clone()) : null;

    /// <summary>The kind of network (<see cref="VaeOptions.Architecture"/>).</summary>
    public VaeArchitecture Architecture => _model.Architecture.Kind;

    /// <summary>Channels × height × width of each row's image (<see cref="VaeOptions.ImageShape"/>), or null when none was given.</summary>
    public IReadOnlyList<int>? ImageShape => _model.Architecture.ImageShape;

    /// <summary>Weight of the KL term in the loss and in the Score column.</summary>
    public double Beta { get; }

    /// <summary>The device the network lives on, e.g. "cpu" or "cuda:0".</summary>
    public string Device => _model.Device.ToString();

    /// <summary>Name of the input column.</summary>
    public string FeatureColumnName => _columns.Feature;

    /// <summary>Name of the latent-mean output column.</summary>
    public string LatentColumnName => _columns.Latent;

    /// <summary>Name of the latent log-variance output column.</summary>
    public string LatentLogVarianceColumnName => _columns.LatentLogVariance;

    /// <summary>Name of the reconstruction output column.</summary>
    public string ReconstructionColumnName => _columns.Reconstruction;

    /// <summary>Name of the per-row loss (anomaly score) output column.</summary>
    public string ScoreColumnName => _columns.Score;

    /// <summary>What each training epoch measured; empty for a model that was not trained in this process.</summary>
    public IReadOnlyList<VaeEpochMetrics> History => _history;

    /// <summary>Always true: the VAE maps each row on its own.</summary>
    public bool IsRowToRowMapper => true;

    internal VaeModel Model => _model;

    internal ColumnNames Columns => _columns;

    internal IHostEnvironment Environment => _env;

    /// <summary>Latent means μ of row-major inputs.</summary>
    /// <remarks>
    /// Like every scoring path, the array API never throws on a value: a row with a NaN or infinite value gets NaN
    /// outputs, and a row with finite values outside [0, 1] is computed as it is; one warning per call reports how many
    /// such rows there were through <c>mlContext.Log</c>. Only a length that is not a whole number of rows throws.
    /// </remarks>
    /// <param name="inputs">rows × <see cref="InputSize"/> values.</param>
    /// <returns>rows × <see cref="LatentDimension"/> values.</returns>
    /// <exception cref="ArgumentException">The length of <paramref name="inputs"/> is not a multiple of <see cref="InputSize"/>.</exception>
    public float[] Encode(ReadOnlySpan<float> inputs) => Encode(inputs, out _, wantLogVariances: false);

    /// <summary>Latent means μ and log-variances log σ² of row-major inputs.</summary>
    /// <param name="inputs">rows × <see cref="InputSize"/> values.</param>
    /// <param name="logVariances">rows × <see cref="LatentDimension"/> log-variances.</param>
    /// <returns>rows × <see cref="LatentDimension"/> means.</returns>
    /// <exception cref="ArgumentException">The length of <paramref name="inputs"/> is not a multiple of <see cref="InputSize"/>.</exception>
    public float[] Encode(ReadOnlySpan<float> inputs, out float[] logVariances) => Encode(inputs, out logVariances, wantLogVariances: true);

    /// <summary>Decoder output for row-major latent vectors: probabilities in [0, 1] (Bernoulli), or means in the features' raw units (Gaussian).</summary>
    /// <param name="latents">rows × <see cref="LatentDimension"/> values.</param>
    /// <returns>rows × <see cref="InputSize"/> values.</returns>
    /// <exception cref="ArgumentException">The length of <paramref name="latents"/> is not a multiple of <see cref="LatentDimension"/>.</exception>
    public float[] Decode(ReadOnlySpan<float> latents)
    {
        var rows = RowsOf(latents, LatentDimension, nameof(latents));
        var output = new float[rows * InputSize];
        _model.Decode(latents, rows, output);
        return output;
    }

    /// <summary>Reconstructions decoder(μ) of row-major inputs (Gaussian: means in the features' raw units).</summary>
    /// <param name="inputs">rows × <see cref="InputSize"/> values.</param>
    /// <returns>rows × <see cref="InputSize"/> values.</returns>
    /// <exception cref="ArgumentException">The length of <paramref name="inputs"/> is not a multiple of <see cref="InputSize"/>.</exception>
    public float[] Reconstruct(ReadOnlySpan<float> inputs)
    {
        var rows = RowsOf(inputs, InputSize, nameof(inputs));
        var output = new float[rows * InputSize];
        Infer(inputs, rows, default, default, output, default, nameof(Reconstruct));
        return output;
    }

    /// <summary>Per-row loss BCE + β·KL at z = μ (the Score column) of row-major inputs.</summary>
    /// <param name="inputs">rows × <see cref="InputSize"/> values.</param>
    /// <returns>One score per row.</returns>
    /// <exception cref="ArgumentException">The length of <paramref name="inputs"/> is not a multiple of <see cref="InputSize"/>.</exception>
    public float[] Score(ReadOnlySpan<float> inputs)
    {
        var rows = RowsOf(inputs, InputSize, nameof(inputs));
        var output = new float[rows];
        Infer(inputs, rows, default, default, default, output, nameof(Score));
        return output;
    }

    /// <summary>Decodes <paramref name="count"/> latent vectors drawn from the prior N(0, I) (Gaussian: the decoder's means in raw units, no noise added).</summary>
    /// <param name="count">Number of samples.</param>
    /// <param name="seed">Seed of the draw; null draws a random one.</param>
    /// <returns><paramref name="count"/> × <see cref="InputSize"/> values in [0, 1].</returns>
    public float[] Sample(int count, int? seed = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        return _model.Sample(count, seed ?? Random.Shared.Next());
    }

    /// <summary>The input schema plus the four output columns.</summary>
    /// <param name="inputSchema">Schema of the data to transform; must hold the feature column with <see cref="InputSize"/> values.</param>
    /// <returns>The output schema.</returns>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => new VaeRowMapping(this, inputSchema).OutputSchema;

    /// <summary>A row mapper for single rows, as the prediction engine uses.</summary>
    /// <param name="inputSchema">Schema of the rows to map.</param>
    /// <returns>The mapper.</returns>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => new VaeRowMapping(this, inputSchema);

    /// <summary>Adds the output columns to <paramref name="input"/>, lazily: nothing is computed until a cursor reads them.</summary>
    /// <remarks>
    /// Schema problems throw here. Values never make a cursor throw: a row with a NaN or infinite value gets NaN outputs
    /// (the other rows are unaffected), and a row with values outside [0, 1] is scored as it is (its Score is then large);
    /// each cursor logs one warning through <c>mlContext.Log</c> with the number of such rows.
    /// </remarks>
    /// <param name="input">Data with the feature column.</param>
    /// <returns>The transformed view.</returns>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return new VaeDataView(input, new VaeRowMapping(this, input.Schema));
    }

    /// <summary>Saves the transformer into an ML.NET model (used by <c>mlContext.Model.Save</c>).</summary>
    /// <param name="ctx">ML.NET's save context.</param>
    void ICanSaveModel.Save(ModelSaveContext ctx) => Internals.MlNetInternals.Save(ctx, Persistence.VaeSnapshot.Of(this));

    /// <summary>Releases the network's native memory.</summary>
    public void Dispose() => _model.Dispose();

    private float[] Encode(ReadOnlySpan<float> inputs, out float[] logVariances, bool wantLogVariances)
    {
        var rows = RowsOf(inputs, InputSize, nameof(inputs));
        var mu = new float[rows * LatentDimension];
        logVariances = wantLogVariances ? new float[rows * LatentDimension] : [];
        Infer(inputs, rows, mu, logVariances, default, default, nameof(Encode));
        return mu;
    }

    /// <summary>One array call is one scoring pass: odd rows are counted and reported in one warning.</summary>
    private void Infer(ReadOnlySpan<float> inputs, int rows, Span<float> mu, Span<float> logVar, Span<float> reconstruction, Span<float> score, string method)
    {
        var rowValues = new RowValues[rows];
        _model.Infer(inputs, rows, mu, logVar, reconstruction, score, Beta, rowValues);
        var tally = new ScoringTally(_env, $"VAE scoring (VaeTransformer.{method})");
        tally.Count(rowValues);
        tally.Report();
    }

    private static int RowsOf(ReadOnlySpan<float> values, int width, string name)
    {
        if (values.Length % width != 0)
        {
            throw new ArgumentException(
                $"'{name}' has {values.Length} values, which is not a multiple of {width} (the values per row): pass rows × {width} values, row-major.", name);
        }

        return values.Length / width;
    }

    /// <summary>The five column names a VAE reads and writes.</summary>
    internal sealed record ColumnNames(string Feature, string Latent, string LatentLogVariance, string Reconstruction, string Score)
    {
        public static ColumnNames From(VaeOptions o)
            => new(o.FeatureColumnName, o.LatentColumnName, o.LatentLogVarianceColumnName, o.ReconstructionColumnName, o.ScoreColumnName);

        public IEnumerable<(string Option, string Name)> Outputs =>
        [
            (nameof(VaeOptions.LatentColumnName), Latent),
            (nameof(VaeOptions.LatentLogVarianceColumnName), LatentLogVariance),
            (nameof(VaeOptions.ReconstructionColumnName), Reconstruction),
            (nameof(VaeOptions.ScoreColumnName), Score),
        ];

        public void Check()
        {
            if (string.IsNullOrWhiteSpace(Feature))
            {
                throw new ArgumentException($"{nameof(VaeOptions.FeatureColumnName)} must be a non-empty column name.", nameof(VaeOptions.FeatureColumnName));
            }

            var seen = new Dictionary<string, string>(StringComparer.Ordinal) { [Feature] = nameof(VaeOptions.FeatureColumnName) };
            foreach (var (option, name) in Outputs)
            {
                if (string.IsNullOrWhiteSpace(name))
                {
                    throw new ArgumentException($"{option} must be a non-empty column name.", option);
                }

                if (!seen.TryAdd(name, option))
                {
                    throw new ArgumentException(
                        $"{option} '{name}' collides with {seen[name]}: every output column needs its own name, different from the input column.", option);
                }
            }
        }
    }
}
