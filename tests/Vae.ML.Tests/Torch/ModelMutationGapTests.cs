using TorchSharp;
using Vae.ML.Tests.Expectations;
using Vae.ML.Torch;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

// Not Vae.ML.Tests.Torch: that namespace would hide Vae.ML.Torch from the other tests' "Torch.X" references.
namespace Vae.ML.Tests.TorchModel;

/// <summary>
/// The model, the network and the importance-weighted estimate against expectations computed outside them: the
/// formulas in double precision (<see cref="ReferenceVae"/>), libtorch's functional operators applied to the network's
/// own weights, and the noise redrawn from a generator seeded alike. Written for the Stryker run on Torch/'s model and
/// scoring files (docs/testing.md, "Mutation testing"): the scoring tests compare paths of the same code, which a
/// mutant of that code changes alike.
/// </summary>
public class ModelMutationGapTests
{
    /// <summary>TorchSharp's native library is loaded (and patched on Debian 12) by the library; these tests call torch first.</summary>
    public ModelMutationGapTests() => Vae.ML.Runtime.TorchRuntime.EnsureInitialized();

    private const int Width = 6;
    private const int Latent = 2;
    private static readonly double LogTwoPi = Math.Log(2 * Math.PI);

    /// <summary>A model whose every weight is a formula (as <see cref="ReferenceVae.KnownWeights"/>), with, for the
    /// Gaussian likelihood, a learned log σ² on both sides of its floor and a standardization with std ≠ 1.</summary>
    private static VaeModel KnownModel(VaeNetworkSpec spec)
    {
        var model = VaeModel.Create(spec, seed: 0, "cpu");
        var known = new Dictionary<string, (long[] Shape, float[] Values)>(StringComparer.Ordinal);
        var layer = 0;
        foreach (var (name, shape, values) in model.GetParameters())
        {
            layer++;
            var scale = 1.5f / MathF.Sqrt(shape[^1]);
            known[name] = (shape, Enumerable.Range(0, values.Length).Select(k => scale * MathF.Sin((0.7f * k) + (1.3f * layer))).ToArray());
        }

        if (spec.Likelihood == VaeLikelihood.Gaussian)
        {
            var n = spec.InputSize;
            known[GaussianDecoder.LogVarianceName] = ([n], Enumerable.Range(0, n).Select(i => (float)(GaussianDecoder.MinLogVariance - 1 + (3.0 * i / n))).ToArray());
            known[GaussianDecoder.MeanName] = ([n], Enumerable.Range(0, n).Select(i => 0.3f * i).ToArray());
            known[GaussianDecoder.StdName] = ([n], Enumerable.Range(0, n).Select(i => 0.5f + (0.25f * i)).ToArray());
        }

        model.SetParameters(known);
        return model;
    }

    private static float[] Rows(int rows, int width, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, rows * width).Select(_ => (float)random.NextDouble()).ToArray();
    }

    private static float[] Values(Tensor t)
    {
        using var contiguous = t.contiguous();
        return contiguous.data<float>().ToArray();
    }

    private static void ShouldBeClose(IReadOnlyList<float> actual, IReadOnlyList<double> expected, double tolerance, string what)
    {
        actual.Should().HaveCount(expected.Count, what);
        for (var i = 0; i < expected.Count; i++)
        {
            ((double)actual[i]).Should().BeApproximately(expected[i], tolerance * Math.Max(1, Math.Abs(expected[i])), $"{what}, value {i}");
        }
    }

    /// <summary>The standardized row as the network sees it: (x − mean) / std in float, as FeatureStandardization computes it.</summary>
    private static float[] Standardized(ReadOnlySpan<float> row, FeatureStandardization? standardization)
    {
        var x = row.ToArray();
        if (standardization is null)
        {
            return x;
        }

        for (var i = 0; i < x.Length; i++)
        {
            x[i] = (x[i] - standardization.Mean[i]) / standardization.Std[i];
        }

        return x;
    }

    /// <summary>log p(x | z) from the formulas: −BCE, or the raw-unit Gaussian density with log σ² floored.</summary>
    private static double LogPxGivenZ(VaeModel model, float[] standardized, double[] logits)
    {
        if (model.Likelihood == VaeLikelihood.Bernoulli)
        {
            return -ReferenceVae.Bce(standardized, logits);
        }

        var logVariance = model.GetParameters().Single(p => p.Name == GaussianDecoder.LogVarianceName).Values;
        var sum = 0.0;
        for (var i = 0; i < standardized.Length; i++)
        {
            var lv = Math.Max(logVariance[i], Math.Log(1e-3));
            var difference = standardized[i] - logits[i];
            sum += 0.5 * ((difference * difference / Math.Exp(lv)) + lv + LogTwoPi);
        }

        return -(sum + model.Standardization!.Std.Sum(s => Math.Log(s)));
    }

    /// <summary>
    /// The IWAE estimate from its definition, log (1/k) Σᵢ p(x|zᵢ) p(zᵢ) / q(zᵢ|x) with zᵢ = μ + εᵢ·σ, in double, on ε
    /// redrawn from a generator seeded alike: count × rows × latent values per pass of at most 2,048 decoded rows, in
    /// sample order (the documented draw order).
    /// </summary>
    private static double[] ReferenceLogLikelihood(VaeModel model, float[] inputs, int rows, int samples, ulong seed)
    {
        var reference = new ReferenceVae(model.GetParameters());
        var standardized = Enumerable.Range(0, rows).Select(r => Standardized(inputs.AsSpan(r * Width, Width), model.Standardization)).ToArray();
        var encoded = standardized.Select(x => reference.Encode(x)).ToArray();
        var logWeights = new double[rows][];
        for (var r = 0; r < rows; r++)
        {
            logWeights[r] = new double[samples];
        }

        using var generator = new Generator(seed, torch.CPU);
        var perPass = Math.Max(1, 2048 / rows);
        for (var done = 0; done < samples; done += perPass)
        {
            var count = Math.Min(perPass, samples - done);
            using var drawn = torch.randn(new long[] { count, rows, Latent }, generator: generator);
            var eps = Values(drawn);
            for (var s = 0; s < count; s++)
            {
                for (var r = 0; r < rows; r++)
                {
                    var (mu, logVar) = encoded[r];
                    var e = eps.AsSpan(((s * rows) + r) * Latent, Latent).ToArray();
                    var z = Enumerable.Range(0, Latent).Select(k => mu[k] + (e[k] * Math.Exp(0.5 * logVar[k]))).ToArray();
                    var logPz = -0.5 * z.Sum(v => (v * v) + LogTwoPi);
                    var logQ = -0.5 * Enumerable.Range(0, Latent).Sum(k => ((double)e[k] * e[k]) + logVar[k] + LogTwoPi);
                    logWeights[r][done + s] = LogPxGivenZ(model, standardized[r], reference.DecodeLogits(z)) + logPz - logQ;
                }
            }
        }

        return logWeights.Select(w =>
        {
            var max = w.Max();
            return max + Math.Log(w.Sum(v => Math.Exp(v - max))) - Math.Log(samples);
        }).ToArray();
    }

    [Theory]
    [InlineData(VaeLikelihood.Bernoulli, 3, 7)]
    [InlineData(VaeLikelihood.Gaussian, 3, 7)]
    [InlineData(VaeLikelihood.Bernoulli, 700, 5)] // 2 samples per pass of 2,048 decoded rows: passes of 2, 2 and 1
    [InlineData(VaeLikelihood.Gaussian, 1, 1)]
    [InlineData(VaeLikelihood.Bernoulli, 2, 1025)] // passes of 1,024 samples and 1: a last pass of 4 values is drawn otherwise than a 5th of one draw
    public void The_importance_weighted_estimate_is_its_definition_on_the_same_noise(VaeLikelihood likelihood, int rows, int samples)
    {
        using var model = KnownModel(new VaeNetworkSpec(VaeArchitecture.Mlp, Width, [5], Latent, null, likelihood));
        var inputs = Rows(rows, Width, seed: 4);
        const ulong seed = 17;

        double[] estimate;
        using (var generator = new Generator(seed, torch.CPU))
        {
            estimate = VaeImportanceWeighting.LogLikelihood(model, inputs, rows, samples, generator);
        }

        var expected = ReferenceLogLikelihood(model, inputs, rows, samples, seed);
        estimate.Should().HaveCount(rows);
        for (var r = 0; r < rows; r++)
        {
            estimate[r].Should().BeApproximately(expected[r], 1e-4 * Math.Max(1, Math.Abs(expected[r])), $"row {r} of {rows}, k = {samples}, {likelihood}");
        }
    }

    [Fact]
    public void The_importance_weighted_estimate_of_no_rows_is_empty()
    {
        using var model = KnownModel(VaeNetworkSpec.Mlp(Width, [5], Latent));
        using var generator = new Generator(1, torch.CPU);
        VaeImportanceWeighting.LogLikelihood(model, [], 0, 10, generator).Should().BeEmpty();
    }

    /// <summary>
    /// The managed one-row forward against the formulas (not only against the batched libtorch path): a Gaussian network
    /// with log σ² on both sides of its floor and std ≠ 1, and a wider MLP whose 10 latent values and 40 features need
    /// scratch buffers larger than the shared pool's smallest arrays.
    /// </summary>
    [Theory]
    [InlineData(VaeLikelihood.Gaussian, 6, 5, 2)]
    [InlineData(VaeLikelihood.Bernoulli, 40, 31, 10)]
    public void One_row_is_scored_as_the_formulas_say(VaeLikelihood likelihood, int width, int hidden, int latent)
    {
        using var model = KnownModel(new VaeNetworkSpec(VaeArchitecture.Mlp, width, [hidden], latent, null, likelihood));
        model.ScoresSingleRowsManaged.Should().BeTrue();
        var reference = new ReferenceVae(model.GetParameters());
        var random = new Random(12);
        var row = Enumerable.Range(0, width).Select(i => i % 5 == 0 ? 0f : (float)random.NextDouble()).ToArray(); // zeros are skipped by the wide layers
        var (mu, logVar, reconstruction, score) = (new float[latent], new float[latent], new float[width], new float[1]);
        const double beta = 0.75;
        model.Infer(row, 1, mu, logVar, reconstruction, score, beta, default);

        var x = model.Standardization is { } s ? row.Select((v, i) => (v - s.Mean[i]) / s.Std[i]).ToArray() : row;
        var (m, lv) = reference.Encode(x);
        var logits = reference.DecodeLogits(m);
        ShouldBeClose(mu, m, 1e-5, "μ");
        ShouldBeClose(logVar, lv, 1e-5, "log σ²");
        var expectedReconstruction = model.Standardization is { } raw
            ? logits.Select((l, i) => (l * raw.Std[i]) + raw.Mean[i]).ToArray()
            : logits.Select(ReferenceVae.Sigmoid).ToArray();
        ShouldBeClose(reconstruction, expectedReconstruction, 1e-5, "reconstruction");
        var expectedScore = -LogPxGivenZ(model, x, logits) + (beta * ReferenceVae.Kl(m, lv));
        ((double)score[0]).Should().BeApproximately(expectedScore, 1e-5 * Math.Abs(expectedScore), "score");

        // Asked for the reconstruction alone, or the score alone, the decoder still runs.
        var alone = new float[width];
        model.Infer(row, 1, default, default, alone, default, beta, default);
        alone.Should().Equal(reconstruction);
        var scoreAlone = new float[1];
        model.Infer(row, 1, default, default, default, scoreAlone, beta, default);
        scoreAlone.Should().Equal(score);
    }

    [Fact]
    public void Decoding_maps_each_finite_latent_row_through_the_decoder_and_a_non_finite_one_to_NaN()
    {
        using var model = KnownModel(VaeNetworkSpec.Mlp(Width, [5], Latent));
        var reference = new ReferenceVae(model.GetParameters());
        float[] latents = [0.5f, -1, float.NaN, 2, 1.5f, 0.25f];
        var output = new float[3 * Width];
        model.Decode(latents, 3, output);
        foreach (var r in new[] { 0, 2 })
        {
            var expected = reference.DecodeLogits([latents[2 * r], latents[(2 * r) + 1]]).Select(ReferenceVae.Sigmoid).ToArray();
            ShouldBeClose(output[(r * Width)..((r + 1) * Width)], expected, 1e-5, $"row {r}");
        }

        output[Width..(2 * Width)].Should().OnlyContain(v => float.IsNaN(v));
    }

    [Fact]
    public void Sampling_decodes_standard_normal_latents_drawn_from_the_seed()
    {
        using var model = KnownModel(VaeNetworkSpec.Mlp(Width, [5], Latent));
        var reference = new ReferenceVae(model.GetParameters());
        const int count = 4;
        var samples = model.Sample(count, seed: 31);
        samples.Should().HaveCount(count * Width);
        float[] z;
        using (var generator = new Generator(31, torch.CPU))
        using (var drawn = torch.randn(new long[] { count, Latent }, generator: generator))
        {
            z = drawn.data<float>().ToArray();
        }

        for (var r = 0; r < count; r++)
        {
            var expected = reference.DecodeLogits([z[2 * r], z[(2 * r) + 1]]).Select(ReferenceVae.Sigmoid).ToArray();
            ShouldBeClose(samples[(r * Width)..((r + 1) * Width)], expected, 1e-5, $"sample {r}");
        }

        model.Sample(0, seed: 31).Should().BeEmpty();
    }

    [Fact]
    public void A_managed_layer_takes_only_dense_weights_of_its_size()
    {
        var dense = new LayerSpec("fc", LayerKind.Linear, 3, 2);
        var act = () => new ManagedLinear(dense, new float[5], new float[2]);
        act.Should().Throw<ArgumentException>().WithMessage("Layer 'fc' is not a 2×3 dense layer.*");
        act = () => new ManagedLinear(dense, new float[6], new float[3]);
        act.Should().Throw<ArgumentException>();
        act = () => new ManagedLinear(dense with { Kind = LayerKind.Convolution }, new float[6], new float[2]);
        act.Should().Throw<ArgumentException>();

        // y = W·x + b with W [out, in] = [[1, 2, 3], [−4, 5, −6]], b = [0.5, −1]; ReLU clears the negative output.
        var layer = new ManagedLinear(dense, [1, 2, 3, -4, 5, -6], [0.5f, -1]);
        layer.Forward([1, 0, 2], new float[4], relu: false).ToArray().Should().Equal(7.5f, -17);
        layer.Forward([1, 0, 2], new float[4], relu: true).ToArray().Should().Equal(7.5f, 0);
        var wide = new ManagedLinear(new LayerSpec("wide", LayerKind.Linear, 2, 16), Enumerable.Range(0, 32).Select(i => (float)i).ToArray(), new float[16]);
        wide.Forward([1, -1], new float[16], relu: false).ToArray().Should().Equal(Enumerable.Repeat(-1f, 16), "each output is w[o, 0] − w[o, 1] = −1");
    }

    [Fact]
    public void A_convolutional_network_has_no_managed_one_row_path()
    {
        var spec = new VaeNetworkSpec(VaeArchitecture.Convolutional, 16, [4], Latent, [1, 4, 4]);
        using var model = VaeModel.Create(spec, seed: 2, "cpu");
        model.ScoresSingleRowsManaged.Should().BeFalse();
        var act = () => ManagedMlp.Create(spec, model.GetParameters(), null);
        act.Should().Throw<ArgumentException>().WithMessage("Layer 'dec_deconv3' is not a 1×32 dense layer.*");
    }

    [Fact]
    public void The_training_forward_decodes_mu_plus_eps_times_sigma_with_eps_from_the_generator()
    {
        using var model = KnownModel(VaeNetworkSpec.Mlp(Width, [5, 4], Latent));
        var reference = new ReferenceVae(model.GetParameters());
        const int rows = 4;
        var inputs = Rows(rows, Width, seed: 6);

        float[] logits, mu, logVar, eps;
        using (var scope = torch.NewDisposeScope())
        using (var generator = new Generator(23, torch.CPU))
        using (var again = new Generator(23, torch.CPU))
        {
            var x = torch.tensor(inputs, new long[] { rows, Width });
            var forward = model.Network.forward(x, generator);
            (logits, mu, logVar) = (Values(forward.Logits), Values(forward.Mu), Values(forward.LogVar));
            eps = Values(torch.randn(new long[] { rows, Latent }, generator: again));
        }

        for (var r = 0; r < rows; r++)
        {
            var (m, lv) = reference.Encode(inputs.AsSpan(r * Width, Width));
            ShouldBeClose(mu[(r * Latent)..((r + 1) * Latent)], m, 1e-5, $"row {r}: μ");
            ShouldBeClose(logVar[(r * Latent)..((r + 1) * Latent)], lv, 1e-5, $"row {r}: log σ²");
            var z = Enumerable.Range(0, Latent).Select(k => m[k] + (eps[(r * Latent) + k] * Math.Exp(0.5 * lv[k]))).ToArray();
            ShouldBeClose(logits[(r * Width)..((r + 1) * Width)], reference.DecodeLogits(z), 1e-5, $"row {r}: logits at z = μ + ε·σ");
        }
    }

    /// <summary>
    /// The convolutional network (Keras example) written out with libtorch's functional operators on the module's own
    /// weights: conv(stride 2, pad 1) → ReLU twice, flatten, dense → ReLU, the two heads; dense → ReLU twice, view as
    /// 64 × H/4 × W/4, transposed conv (stride 2, pad 1, output pad 1) → ReLU twice, transposed conv (stride 1) → logits.
    /// </summary>
    [Fact]
    public void The_convolutional_network_is_the_keras_layout_written_with_functional_operators()
    {
        var spec = new VaeNetworkSpec(VaeArchitecture.Convolutional, 2 * 8 * 4, [5], 3, [2, 8, 4]);
        using var model = VaeModel.Create(spec, seed: 8, "cpu");
        const int rows = 3;
        var inputs = Rows(rows, spec.InputSize, seed: 7);
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var p = model.Network.named_parameters().ToDictionary(n => n.name, n => (Tensor)n.parameter);
        var x = torch.tensor(inputs, new long[] { rows, spec.InputSize });

        var h = x.reshape(rows, 2, 8, 4);
        h = F.relu(F.conv2d(h, p["enc_conv1.weight"], p["enc_conv1.bias"], strides: [2, 2], padding: [1, 1]));
        h = F.relu(F.conv2d(h, p["enc_conv2.weight"], p["enc_conv2.bias"], strides: [2, 2], padding: [1, 1]));
        h.shape.Should().Equal(rows, 64, 2, 1);
        h = F.relu(F.linear(h.flatten(1), p["enc_fc1.weight"], p["enc_fc1.bias"]));
        var mu = F.linear(h, p["enc_mu.weight"], p["enc_mu.bias"]);
        var logVar = F.linear(h, p["enc_logvar.weight"], p["enc_logvar.bias"]);

        var z = torch.tensor(Rows(rows, 3, seed: 9), new long[] { rows, 3 });
        var d = F.relu(F.linear(z, p["dec_fc1.weight"], p["dec_fc1.bias"]));
        d = F.relu(F.linear(d, p["dec_fc2.weight"], p["dec_fc2.bias"])).reshape(rows, 64, 2, 1);
        d = F.relu(F.conv_transpose2d(d, p["dec_deconv1.weight"], p["dec_deconv1.bias"], strides: [2, 2], padding: [1, 1], output_padding: [1, 1]));
        d = F.relu(F.conv_transpose2d(d, p["dec_deconv2.weight"], p["dec_deconv2.bias"], strides: [2, 2], padding: [1, 1], output_padding: [1, 1]));
        var logits = F.conv_transpose2d(d, p["dec_deconv3.weight"], p["dec_deconv3.bias"], strides: [1, 1], padding: [1, 1]).flatten(1);

        var (actualMu, actualLogVar) = model.Network.Encode(x);
        var actualLogits = model.Network.DecodeLogits(z);
        ShouldBeClose(Values(actualMu), Values(mu).Select(v => (double)v).ToArray(), 1e-5, "μ");
        ShouldBeClose(Values(actualLogVar), Values(logVar).Select(v => (double)v).ToArray(), 1e-5, "log σ²");
        actualLogits.shape.Should().Equal(rows, spec.InputSize);
        ShouldBeClose(Values(actualLogits), Values(logits).Select(v => (double)v).ToArray(), 1e-5, "logits");
    }
}
