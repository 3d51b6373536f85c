local JSON = require 'JSON'

describe('JSON', function()
	describe('encode', function()
		it('writes scalars the way JSON spells them', function()
			assert.are.equal('true', JSON.encode(true))
			assert.are.equal('false', JSON.encode(false))
			assert.are.equal('null', JSON.encode(nil))
			assert.are.equal('null', JSON.encode(JSON.null))
			assert.are.equal('42', JSON.encode(42))
			assert.are.equal('-7', JSON.encode(-7))
			assert.are.equal('0.5', JSON.encode(0.5))
			assert.are.equal('"hi"', JSON.encode('hi'))
		end)

		it('keeps integers exact and floats round-trippable', function()
			assert.are.equal('9007199254740991', JSON.encode(2 ^ 53 - 1))
			for _, x in ipairs({ 0.1, 1 / 3, 1e-300, 123456.789, -2.5e10 }) do
				assert.are.equal(x, tonumber(JSON.encode(x)))
			end
		end)

		it('refuses NaN and infinities instead of writing invalid JSON', function()
			assert.has_error(function() JSON.encode(0 / 0) end)
			assert.has_error(function() JSON.encode(math.huge) end)
			assert.has_error(function() JSON.encode({ x = -math.huge }) end)
		end)

		it('escapes quotes, backslashes and control characters', function()
			assert.are.equal([["a\"b\\c\n\t\u0001"]], JSON.encode('a"b\\c\n\t\1'))
		end)

		it('passes UTF-8 through untouched', function()
			assert.are.equal('"caf\195\169 \226\128\166"', JSON.encode('caf\195\169 \226\128\166'))
		end)

		it('writes arrays for 1..n tables and sorted objects otherwise', function()
			assert.are.equal('[1,2,3]', JSON.encode({ 1, 2, 3 }))
			assert.are.equal('{"a":1,"b":[true],"c":"x"}', JSON.encode({ c = 'x', a = 1, b = { true } }))
			assert.are.equal('{}', JSON.encode({}))
			assert.are.equal('[]', JSON.encode(JSON.array({})))
		end)

		it('refuses sparse arrays, non-string keys, functions and cycles', function()
			assert.has_error(function() JSON.encode({ [1] = 1, [3] = 3 }) end)
			assert.has_error(function() JSON.encode({ [true] = 1 }) end)
			assert.has_error(function() JSON.encode({ f = print }) end)
			local t = {}
			t.self = t
			assert.has_error(function() JSON.encode(t) end)
		end)

		it('allows the same table twice when it is not a cycle', function()
			local shared = { 1 }
			assert.are.equal('{"a":[1],"b":[1]}', JSON.encode({ a = shared, b = shared }))
		end)
	end)

	describe('decode', function()
		it('reads what the bridge sends', function()
			local v = assert(JSON.decode(
				'{"error": {"code": "invalid_params", "message": "parameter \'scale\' must be one of: 2, 4",'
				.. ' "details": {"param": "scale"}}}'))
			assert.are.equal('invalid_params', v.error.code)
			assert.are.equal("parameter 'scale' must be one of: 2, 4", v.error.message)
			assert.are.equal('scale', v.error.details.param)
		end)

		it('reads numbers in every JSON form', function()
			local v = assert(JSON.decode('[0, -0, 12, -3.25, 1e3, 2E-2, 6.02e+23]'))
			assert.are.same({ 0, 0, 12, -3.25, 1000, 0.02, 6.02e23 }, { unpack(v) })
		end)

		it('rejects numbers JSON forbids', function()
			for _, bad in ipairs({ '01', '1.', '.5', '1e', '+1', '-', '1e+', '0x10' }) do
				local v, err = JSON.decode(bad)
				assert.is_nil(v, bad)
				assert.is_string(err)
			end
		end)

		it('decodes escapes, including surrogate pairs, to UTF-8', function()
			assert.are.equal('a"b\\/\b\f\n\r\t', JSON.decode([["a\"b\\\/\b\f\n\r\t"]]))
			assert.are.equal('\195\169', JSON.decode([["\u00e9"]]))
			assert.are.equal('\226\130\172', JSON.decode([["\u20AC"]]))
			assert.are.equal('\240\159\152\128', JSON.decode([["\ud83d\ude00"]]))
			assert.are.equal('\239\191\189', JSON.decode([["\ud83d"]]), 'a lone surrogate becomes U+FFFD')
		end)

		it('keeps null distinct from a missing key', function()
			local v = assert(JSON.decode('{"a": null, "b": [null, 1]}'))
			assert.are.equal(JSON.null, v.a)
			assert.are.equal(JSON.null, v.b[1])
			assert.are.equal(2, #v.b)
		end)

		it('round-trips nested values', function()
			local value = { op = 'upscale', params = { scale = 4, model = 'RealESRGAN_x4plus', fidelity = 0.7 },
				list = { 'a', { b = false } }, empty = JSON.array({}) }
			local text = JSON.encode(value)
			assert.are.equal(text, JSON.encode(assert(JSON.decode(text))))
		end)

		it('returns nil and a position for broken text, never raises', function()
			for _, bad in ipairs({ '', '{', '{"a":1,}', '[1 2]', '{"a" 1}', '"open', 'tru', 'nul',
				'{"a":1} x', '<html>500</html>', '"\1"', '"\\x"', '"\\u12"', '{1:2}' }) do
				local v, err = JSON.decode(bad)
				assert.is_nil(v, bad)
				assert.matches('character %d+', err, 1, false, bad)
			end
			assert.is_nil((JSON.decode(nil)))
			assert.is_nil((JSON.decode(string.rep('[', 500) .. string.rep(']', 500))))
		end)
	end)
end)
