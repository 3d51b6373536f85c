-- The stand-in's tasks behave like Lightroom's where the plug-in could get it wrong: the calls
-- that yield in Lightroom yield here, so a plain pcall around one fails as it does there.
local Lr = require 'lightroom_standin'

local LrTasks = import 'LrTasks'
local LrFunctionContext = import 'LrFunctionContext'

describe('the Lightroom stand-in\'s tasks', function()
	before_each(function() Lr.reset() end)

	local function yieldingCalls()
		local photo = Lr.newPhoto { path = '/p/a.tif' }
		return {
			['LrTasks.yield'] = function() LrTasks.yield() end,
			['LrTasks.sleep'] = function() LrTasks.sleep(0) end,
			['withWriteAccessDo'] = function() Lr.catalog:withWriteAccessDo('x', function() end) end,
			['getFormattedMetadata'] = function() return photo:getFormattedMetadata('fileName') end,
		}
	end

	it('a plain pcall around a yielding call fails as in Lightroom; LrTasks.pcall does not', function()
		for name, call in pairs(yieldingCalls()) do
			local plain, plainErr, safe, safeErr
			Lr.runTask(function()
				plain, plainErr = pcall(call)
				safe, safeErr = LrTasks.pcall(call)
			end)
			assert.is_false(plain, name)
			assert.truthy(tostring(plainErr):find('attempt to yield across', 1, true), name)
			assert.is_true(safe, name .. ': ' .. tostring(safeErr))
		end
	end)

	it('LrTasks.pcall returns every result and catches errors, even after a yield', function()
		local results = { Lr.runTask(function()
			local a = { LrTasks.pcall(function(x, y) LrTasks.yield(); return x, nil, y end, 1, 3) }
			local b = { LrTasks.pcall(function() LrTasks.yield(); error('boom', 0) end) }
			return a, b
		end) }
		assert.are.same({ true, 1, nil, 3 }, results[1])
		assert.are.same({ false, 'boom' }, results[2])
	end)

	it('yielding calls outside a task are refused, as Lightroom refuses them', function()
		local ok, err = pcall(LrTasks.sleep, 0)
		assert.is_false(ok)
		assert.matches('only be called from within an asynchronous task', err)
		assert.is_false(pcall(function() Lr.catalog:withWriteAccessDo('x', function() end) end))
	end)

	it('tasks take turns at each yield; a task started from a task waits for its turn', function()
		local order = {}
		Lr.runTask(function()
			LrTasks.startAsyncTask(function()
				order[#order + 1] = 'b1'
				LrTasks.yield()
				order[#order + 1] = 'b2'
			end)
			order[#order + 1] = 'a1'
			LrTasks.yield()
			order[#order + 1] = 'a2'
			LrTasks.yield()
			order[#order + 1] = 'a3'
		end)
		assert.are.same({ 'a1', 'b1', 'a2', 'b2', 'a3' }, order)
		assert.are.equal(2, Lr.tasks)
	end)

	it('callWithContext lets its function yield and still runs the cleanup handlers', function()
		local cleaned
		Lr.runTask(function()
			LrFunctionContext.callWithContext('t', function(context)
				context:addCleanupHandler(function() cleaned = true end)
				LrTasks.yield()
			end)
		end)
		assert.is_true(cleaned)
	end)
end)
