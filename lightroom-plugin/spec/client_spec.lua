local Lr = require 'lightroom_standin'
local BridgeClient = require 'BridgeClient'
local JSON = require 'JSON'
local Multipart = require 'Multipart'
local EnhanceSettings = require 'EnhanceSettings'
local socket = require 'socket'
local FakeIdentity = require 'fake_identity'
-- Every spec body runs as a Lightroom async task: LrHttp yields.
local it = Lr.inTasks(it)

local TIFF = 'II*\0' .. string.rep('\0\1\2\255', 16)

-- Answers every request with the given status and body, as LrHttp would, after proving
-- to the identity challenge that it holds `token` (default 't').
local function answer(status, body, headers, token)
	FakeIdentity.intercept(token or 't', function()
		local hdrs = { status = status }
		for k, v in pairs(headers or {}) do hdrs[#hdrs + 1] = { field = k, value = v } end
		return body, hdrs
	end)
end

local function errorBody(code, message, details)
	return JSON.encode({ error = { code = code, message = message, details = details } })
end

local function freePort()
	local s = assert(socket.bind('127.0.0.1', 0))
	local _, port = s:getsockname()
	s:close()
	return port
end

describe('BridgeClient', function()
	before_each(function() Lr.reset() end)

	describe('requests', function()
		it('normalizes the bridge URL the user typed', function()
			assert.are.equal('http://127.0.0.1:7847', BridgeClient.normalizeUrl(''))
			assert.are.equal('http://127.0.0.1:7847', BridgeClient.normalizeUrl(nil))
			assert.are.equal('http://localhost:9000', BridgeClient.normalizeUrl('  localhost:9000/ '))
			assert.are.equal('http://127.0.0.1:1', BridgeClient.normalizeUrl('http://127.0.0.1:1///'))
		end)

		it('posts multipart with the token, params as JSON and the file bytes untouched', function()
			answer(200, TIFF, nil, 'secret')
			local client = BridgeClient.new { url = 'http://127.0.0.1:7847', token = ' secret \n' }
			local image = string.rep('\0\255\r\n--', 1000)
			local bytes, info = client:runOperation('upscale', { scale = 2, model = 'lanczos' }, image, 'IMG_1.tif',
				{ format = 'jpeg', quality = 92 })
			assert.are.equal(TIFF, bytes)
			assert.are.equal(200, info.status)
			-- First the identity challenge, without the token; then the upload.
			assert.are.equal(2, #Lr.requests)
			assert.is_true(FakeIdentity.isChallenge(Lr.requests[1]))
			assert.is_nil(Lr.requests[1].headers.authorization)
			local req = Lr.requests[2]
			assert.are.equal('POST', req.method)
			assert.are.equal('http://127.0.0.1:7847/v1/ops/upscale?format=jpeg&quality=92', req.url)
			assert.are.equal('Bearer secret', req.headers.authorization)
			assert.are.equal(BridgeClient.DEFAULT_TIMEOUT, req.timeout)
			local parts = Multipart.parse(req.body, req.headers['content-type'])
			assert.are.equal('params', parts[1].name)
			assert.are.equal('application/json', parts[1].contentType)
			assert.are.same({ scale = 2, model = 'lanczos' }, JSON.decode(parts[1].value))
			assert.are.equal('image', parts[2].name)
			assert.are.equal('IMG_1.tif', parts[2].fileName)
			assert.are.equal('image/tiff', parts[2].contentType)
			assert.are.equal(image, parts[2].value)
		end)

		it('streams a file given by path, and says so when it cannot be read', function()
			answer(200, TIFF)
			local Scratch = require 'scratch'
			local dir = Scratch.dir('client')
			finally(Scratch.cleanAll)
			local data = string.rep('\0\1\2\3', 100000)
			local path = Scratch.write(dir .. '/r.tif', data)
			local client = BridgeClient.new { token = 't' }
			assert(client:runOperation('upscale', {}, { path = path }, 'r.tif', { format = 'tiff' }))
			local req = FakeIdentity.calls()[1]
			assert.are.equal(data, Multipart.parse(req.body, req.headers['content-type'])[2].value)
			local bytes, problem = client:runOperation('upscale', {}, { path = dir .. '/gone.tif' }, 'gone.tif')
			assert.is_nil(bytes)
			assert.are.equal('file', problem.kind)
			assert.matches('could not be read', client:describe(problem))
			assert.are.equal(1, #FakeIdentity.calls(), 'nothing was sent for the missing file')
		end)

		it('sends each planned step to its operation with its parameters', function()
			answer(200, TIFF)
			local client = BridgeClient.new { token = 't' }
			local plan = EnhanceSettings.plan {
				rb_cleanup = true, rb_cleanupMode = 'denoise', rb_cleanupStrength = 0.25,
				rb_faces = true, rb_facesModel = 'RestoreFormer', rb_facesFidelity = 0.6,
				rb_upscale = true, rb_upscaleScale = 4, rb_upscaleModel = 'realesr-general-x4v3',
				rb_background = 'remove',
			}
			for _, step in ipairs(plan) do
				assert(client:runOperation(step.op, step.params, 'x', 'a.jpg', { format = 'tiff' }))
			end
			local expected = {
				{ '/v1/ops/denoise?format=tiff', { model = 'SCUNet', strength = 0.25 } },
				{ '/v1/ops/restore-faces?format=tiff', { model = 'RestoreFormer', fidelity = 0.6 } },
				{ '/v1/ops/upscale?format=tiff', { scale = 4, model = 'realesr-general-x4v3' } },
				{ '/v1/ops/remove-background?format=tiff', {} },
			}
			local calls = FakeIdentity.calls()
			assert.are.equal(#expected, #calls)
			assert.are.equal(2 * #expected, #Lr.requests, 'each upload after a fresh identity check')
			for i, want in ipairs(expected) do
				local req = calls[i]
				assert.are.equal('http://127.0.0.1:7847' .. want[1], req.url)
				local parts = Multipart.parse(req.body, req.headers['content-type'])
				assert.are.same(want[2], JSON.decode(parts[1].value))
				assert.are.equal('image/jpeg', parts[2].contentType)
			end
		end)

		it('health never carries the token; without a token no photo is sent at all', function()
			answer(200, '{"status":"ok","version":"0.1.0","protocol":1}', nil, 'abc')
			assert(BridgeClient.new { token = 'abc' }:health())
			assert.is_nil(Lr.requests[1].headers.authorization)
			local client = BridgeClient.new {}
			local bytes, problem = client:runOperation('upscale', {}, 'x', 'a.png')
			assert.is_nil(bytes)
			assert.are.equal('noToken', problem.kind)
			assert.matches('No pairing token is set, so nothing was sent', client:describe(problem))
			assert.are.equal(1, #Lr.requests)
		end)
	end)

	describe('problems', function()
		local client
		before_each(function() client = BridgeClient.new { url = 'http://127.0.0.1:7847', token = 't' } end)

		local function fail(status, body, headers)
			answer(status, body, headers)
			local bytes, problem = client:runOperation('upscale', {}, 'x', 'a.tif')
			assert.is_nil(bytes)
			return problem, client:describe(problem)
		end

		it('401: says to re-pair the token', function()
			local problem, text = fail(401, errorBody('unauthorized', 'missing or wrong token'))
			assert.are.equal('unauthorized', problem.code)
			assert.matches('Re%-pair', text)
			assert.matches('retouch%-bridge token', text)
		end)

		it('409 model_missing: names the model and passes on the bridge hint', function()
			local _, text = fail(409, errorBody('model_missing', 'no model', { model = 'GFPGANv1.4',
				hint = "run 'retouch-bridge models pull GFPGANv1.4'" }))
			assert.matches('GFPGANv1%.4 is not installed', text)
			assert.matches('models pull GFPGANv1%.4', text)
		end)

		it('404 unknown_operation: says to update the bridge or untick the step', function()
			local _, text = fail(404, errorBody('unknown_operation', "no operation 'restore-faces'"))
			assert.matches("no operation 'restore%-faces'", text)
			assert.matches('Update Retouch Bridge', text)
		end)

		it('400: passes the bridge message on', function()
			local _, text = fail(400, errorBody('invalid_params', "parameter 'scale' must be one of: 2, 4"))
			assert.matches("parameter 'scale' must be one of: 2, 4", text)
			assert.matches('HTTP 400', text)
		end)

		it('413 and 415: say how to export instead', function()
			local _, text = fail(413, errorBody('too_large', 'request body is larger than the limit'))
			assert.matches('too large', text)
			_, text = fail(415, errorBody('unsupported_format', 'cannot decode'))
			assert.matches('TIFF, JPEG or PNG', text)
		end)

		it('500: points to the bridge log with the bridge message', function()
			local problem, text = fail(500, errorBody('internal_error', 'ValueError: boom'))
			assert.are.equal(500, problem.status)
			assert.matches('ValueError: boom', text)
			assert.matches('bridge log', text)
		end)

		it('a non-JSON error page: says the URL may not be the bridge', function()
			local problem, text = fail(502, '<html><body>Bad Gateway</body></html>')
			assert.is_true(problem.unexpected)
			assert.matches('HTTP 502', text)
			assert.matches('bridge URL', text)
		end)

		it('an empty 200 answer is a failure, not an empty file', function()
			local problem = fail(200, '')
			assert.is_true(problem.unexpected)
		end)

		it('429 queue_full: waits Retry-After, then succeeds', function()
			local waits = {}
			client = BridgeClient.new { token = 't', sleep = function(s) waits[#waits + 1] = s end }
			local calls = 0
			FakeIdentity.intercept('t', function()
				calls = calls + 1
				if calls < 3 then
					return errorBody('queue_full', 'busy'), { status = 429, { field = 'Retry-After', value = '4' } }
				end
				return TIFF, { status = 200 }
			end)
			assert.are.equal(TIFF, client:runOperation('upscale', {}, 'x', 'a.tif'))
			assert.are.same({ 4, 4 }, waits)
		end)

		it('429 for ever: gives up after the retries with a busy message', function()
			client = BridgeClient.new { token = 't', sleep = function() end, maxRetries = 2 }
			local _, problem = (function()
				answer(429, errorBody('queue_full', 'busy'))
				return client:runOperation('upscale', {}, 'x', 'a.tif')
			end)()
			assert.are.equal(3, #FakeIdentity.calls())
			assert.matches('busy', client:describe(problem))
		end)

		it('bridge down (real refused connection): says to start the bridge', function()
			local port = freePort()
			client = BridgeClient.new { url = 'http://127.0.0.1:' .. port, token = 't' }
			local bytes, problem = client:runOperation('upscale', {}, 'x', 'a.tif')
			assert.is_nil(bytes)
			assert.are.equal('unreachable', problem.kind)
			local text = client:describe(problem)
			assert.matches('not running at http://127%.0%.0%.1:' .. port, text)
			assert.matches('retouch%-bridge serve', text)
		end)

		it('timeout (real server that never answers): says to raise the timeout', function()
			local server = assert(socket.bind('127.0.0.1', 0))
			local _, port = server:getsockname()
			client = BridgeClient.new { url = 'http://127.0.0.1:' .. port, token = 't', timeout = 0.5 }
			local started = socket.gettime()
			local bytes, problem = client:runOperation('upscale', {}, 'x', 'a.tif')
			server:close()
			assert.is_nil(bytes)
			assert.are.equal('timeout', problem.kind)
			assert.is_true(socket.gettime() - started < 5)
			assert.matches('within 0%.5 seconds', client:describe(problem))
		end)

		it('health with broken JSON is reported as an unreadable answer', function()
			answer(200, '<html>')
			local v, problem = client:health()
			assert.is_nil(v)
			assert.are.equal('badJson', problem.kind)
			assert.matches('cannot read', client:describe(problem))
		end)

		it('a protocol mismatch is caught by testConnection', function()
			FakeIdentity.intercept('t', function() return '{"jobs":[]}', { status = 200 } end,
				{ version = '9.0', protocol = 2 })
			local summary, problem = client:testConnection()
			assert.is_nil(summary)
			assert.matches('protocol 2', client:describe(problem))
		end)
	end)
end)
