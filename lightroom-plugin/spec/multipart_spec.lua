local Multipart = require 'Multipart'
local Scratch = require 'scratch'

local function allBytes()
	local t = {}
	for i = 0, 255 do t[#t + 1] = string.char(i) end
	return table.concat(t)
end

describe('Multipart', function()
	it('builds the exact RFC 7578 layout', function()
		local body, contentType = Multipart.build({
			{ name = 'params', value = '{"scale":2}', contentType = 'application/json' },
			{ name = 'image', value = 'BYTES', fileName = 'photo.tif', contentType = 'image/tiff' },
		}, 'XyZ')
		assert.are.equal('multipart/form-data; boundary=XyZ', contentType)
		assert.are.equal(table.concat({
			'--XyZ\r\n',
			'Content-Disposition: form-data; name="params"\r\n',
			'Content-Type: application/json\r\n\r\n',
			'{"scale":2}\r\n',
			'--XyZ\r\n',
			'Content-Disposition: form-data; name="image"; filename="photo.tif"\r\n',
			'Content-Type: image/tiff\r\n\r\n',
			'BYTES\r\n',
			'--XyZ--\r\n',
		}), body)
	end)

	it('carries every byte value unchanged and parses back', function()
		local binary = allBytes() .. '\r\n--' .. allBytes()
		local body, contentType = Multipart.build {
			{ name = 'image', value = binary, fileName = 'x.bin' },
			{ name = 'params', value = '{}' },
		}
		local parts = Multipart.parse(body, contentType)
		assert.are.equal(2, #parts)
		assert.are.equal('image', parts[1].name)
		assert.are.equal('x.bin', parts[1].fileName)
		assert.are.equal(binary, parts[1].value)
		assert.are.equal('{}', parts[2].value)
	end)

	it('picks a boundary that does not occur in the content', function()
		local _, contentType = Multipart.build { { name = 'a', value = 'x' } }
		local boundary = contentType:match('boundary=(.+)$')
		-- Content that contains that very boundary forces a different one.
		local body2, contentType2 = Multipart.build { { name = 'a', value = 'pre--' .. boundary .. 'post' } }
		local boundary2 = contentType2:match('boundary=(.+)$')
		assert.are_not.equal(boundary, boundary2)
		assert.are.equal('pre--' .. boundary .. 'post', Multipart.parse(body2, contentType2)[1].value)
		assert.has_error(function() Multipart.build({ { name = 'a', value = 'has B in it' } }, 'B') end)
	end)

	it('keeps quotes and line breaks out of header values', function()
		local body = Multipart.build({ { name = 'image', value = 'v', fileName = 'evil"\r\nX-Injected: 1.tif' } }, 'b')
		assert.is_nil(body:find('\r\nX-Injected', 1, true))
		assert.truthy(body:find('filename="evil___X-Injected: 1.tif"', 1, true))
	end)

	it('streams a file part from disk in chunks, byte for byte, with the exact total size', function()
		local dir = Scratch.dir('multipart')
		finally(Scratch.cleanAll)
		local data = string.rep(allBytes(), 4096 * 3 + 7) -- a little over 3 MiB
		local path = Scratch.write(dir .. '/render.tif', data)
		local getter, total, contentType = Multipart.stream({
			{ name = 'params', value = '{}', contentType = 'application/json' },
			{ name = 'image', filePath = path, fileName = 'render.tif', contentType = 'image/tiff' },
		}, 'bnd')
		local chunks, biggest = {}, 0
		for chunk in getter do
			chunks[#chunks + 1] = chunk
			biggest = math.max(biggest, #chunk)
		end
		local body = table.concat(chunks)
		assert.are.equal(total, #body)
		assert.is_true(biggest <= 1024 * 1024, 'never more than 1 MiB at a time')
		assert.are.equal(data, Multipart.parse(body, contentType)[2].value)
		-- identical to the same part given as a string
		local same = Multipart.build({
			{ name = 'params', value = '{}', contentType = 'application/json' },
			{ name = 'image', value = data, fileName = 'render.tif', contentType = 'image/tiff' },
		}, 'bnd')
		assert.are.equal(same, body)
	end)

	it('a missing file is an error before anything is sent', function()
		assert.has_error(function() Multipart.stream { { name = 'image', filePath = '/no/such/file.tif' } } end)
	end)

	it('needs at least one named part', function()
		assert.has_error(function() Multipart.build {} end)
		assert.has_error(function() Multipart.build { { value = 'x' } } end)
	end)
end)
